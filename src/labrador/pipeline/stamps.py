"""Make-like stage stamps: a stage is skipped when its inputs, settings and upstream outputs are unchanged.

Each stage writes `<run_dir>/stamps/<name>.json` after it succeeds, holding:
- `key`: sha256 of the stage's inputs (settings, file contents, and the `token` of every upstream stage);
- `token`: a fresh random id for this production of the outputs (downstream keys include it, so when an
  upstream stage re-runs, everything after it re-runs too, even if the upstream inputs were the same);
- `outputs`: what the stage returned (JSON), and `files`: paths that must still exist for the stamp to count;
- `wall_s`: how long the stage took.

A stage that crashes writes no stamp, so the next run redoes it (and the stage's own resume logic, such as
training checkpoints, takes over). Stamps are written to a temp name and renamed, so a half-written stamp
never exists.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from labrador.files import atomic_write_json

_CHUNK = 1 << 20


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes, or of a directory's sorted (relative path, file digest) pairs."""
    digest = hashlib.sha256()
    if path.is_dir():
        for child in sorted(p for p in path.rglob("*") if p.is_file() and ".git" not in p.parts):
            digest.update(child.relative_to(path).as_posix().encode())
            digest.update(file_digest(child).encode())
        return digest.hexdigest()
    if not path.exists():
        return "missing"
    from labrador.userfiles import open_binary

    with open_binary(path) as handle:  # a FIFO or device given as an input is refused, not read forever
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _canonical(value: Any) -> Any:
    """JSON-able form of stage inputs; a `Path` stands for its content, not its name, and a settings model for
    every one of its fields."""
    if isinstance(value, BaseModel):
        return _canonical(value.model_dump())
    if isinstance(value, Path):
        return {"__file__": file_digest(value)}
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)


def fingerprint(inputs: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(_canonical(inputs), sort_keys=True).encode()).hexdigest()


@dataclass
class Stamp:
    stage: str
    key: str
    token: str
    outputs: dict[str, Any]
    files: list[str]
    wall_s: float
    finished_at: float

    def files_exist(self) -> bool:
        return all(Path(f).exists() for f in self.files)


@dataclass
class StageRecord:
    """What happened to a stage in this run (for the report)."""

    name: str
    status: str  # "ran", "up to date", "skipped", "failed"
    wall_s: float
    note: str = ""


@dataclass
class StampStore:
    run_dir: Path
    log: Callable[[str], None] = print
    force: set[str] = field(default_factory=set)  # stage names (or "all") to redo even when up to date
    records: list[StageRecord] = field(default_factory=list)

    @property
    def stamp_dir(self) -> Path:
        return self.run_dir / "stamps"

    def _path(self, name: str) -> Path:
        return self.stamp_dir / (name.replace("/", "__") + ".json")

    def load(self, name: str) -> Stamp | None:
        path = self._path(name)
        if not path.is_file():
            return None
        try:
            return Stamp(**json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, TypeError):
            return None  # a damaged stamp is a missing stamp: the stage re-runs

    def fresh(self, name: str, key: str) -> Stamp | None:
        """The stamp when the stage is up to date for `key` and its output files still exist."""
        if "all" in self.force or name in self.force or name.split("/")[0] in self.force:
            return None
        stamp = self.load(name)
        if stamp is None or stamp.key != key or not stamp.files_exist():
            return None
        return stamp

    def save(self, stamp: Stamp) -> None:
        self.stamp_dir.mkdir(parents=True, exist_ok=True)
        path = self._path(stamp.stage)
        atomic_write_json(path, stamp.__dict__, indent=1, default=str)

    def run(self, name: str, inputs: dict[str, Any], action: Callable[[], dict[str, Any]],
            files: Callable[[dict[str, Any]], list[str]] | None = None) -> Stamp:
        """Run `action` unless the stamp for `inputs` is fresh; return the (new or reused) stamp.

        `action` returns the stage's outputs (JSON-able); `files(outputs)` lists the paths that must still
        exist for the outputs to count as present next time (default: every output value that is a path string
        under the run dir or absolute and existing).
        """
        key = fingerprint(inputs)
        stamp = self.fresh(name, key)
        if stamp is not None:
            self.log(f"[{name}] up to date (ran in {stamp.wall_s:.1f} s earlier), reusing its outputs")
            self.records.append(StageRecord(name, "up to date", stamp.wall_s))
            return stamp
        self.log(f"[{name}] running")
        start = time.perf_counter()
        try:
            outputs = action()
        except BaseException:
            self.records.append(StageRecord(name, "failed", time.perf_counter() - start))
            raise
        wall = time.perf_counter() - start
        listed = files(outputs) if files else _default_files(outputs)
        stamp = Stamp(name, key, uuid.uuid4().hex, outputs, [str(f) for f in listed], wall, time.time())
        self.save(stamp)
        self.records.append(StageRecord(name, "ran", wall))
        self.log(f"[{name}] done in {wall:.1f} s")
        return stamp


def _default_files(outputs: dict[str, Any]) -> list[str]:
    found = []
    for value in outputs.values():
        if isinstance(value, str) and value.startswith("/") and Path(value).exists():
            found.append(value)
    return found
