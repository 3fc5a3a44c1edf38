"""Files on disk: atomic writes (a reader never sees half a file) and JSONL read with `path:line` errors."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from labrador.errors import DataError, LabradorError


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same directory and one rename.

    A crash leaves the old file or the new one, never a partial one; a unique temporary name lets two
    writers of the same path not clobber each other's half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any, **dumps: Any) -> None:
    """`json.dumps(obj, **dumps)` written atomically (callers keep their own indent and ensure_ascii)."""
    atomic_write_text(path, json.dumps(obj, **dumps))


def move_into_place(tmp: Path, target: Path) -> None:
    """Rename a finished output (file or directory, written under a temporary name beside `target` so that an
    interrupted writer never leaves a complete-looking `target`) to `target`, replacing what is there."""
    if target.is_dir():
        shutil.rmtree(target)
    elif target.exists():
        target.unlink()
    os.replace(tmp, target)


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """One JSON object per line, UTF-8 kept as is (not \\u-escaped), written atomically."""
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every object of a JSONL file (see `iter_objects` for the errors)."""
    return [row for _, row in iter_objects(Path(path))]


def iter_objects(path: Path, expected: str = "one JSON object") -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line; DataError naming `path:line` for a line that is not
    valid JSON or not an object. `expected` words what a line should hold, for the message. The file is read
    through `labrador.userfiles` (a regular file, at most DATA_FILE.cap bytes, UTF-8 with the bad byte's place)."""
    from labrador.userfiles import DATA_FILE, read_text

    # "\n" only: str.splitlines() would also cut at U+2028/U+2029/U+0085, which JSON strings may hold raw
    for n, line in enumerate(read_text(path, DATA_FILE).split("\n"), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{n}: not valid JSON ({err.msg}); each line must be {expected}.") from None
        except RecursionError:
            raise DataError(f"{path}:{n}: the JSON is nested too deeply to read; each line must be {expected}.") \
                from None
        if not isinstance(row, dict):
            raise DataError(f"{path}:{n}: expected {expected}, found {type(row).__name__}.")
        yield n, row


def read_yaml(path: Path, error: type[LabradorError] = DataError) -> Any:
    """The YAML document in `path`, read through `labrador.userfiles` (a regular file, at most YAML_FILE.cap
    bytes, UTF-8) and parsed by `labrador.yamlnodes` (alias bombs, deep nesting and keys written twice are
    refused); `error` naming the file, line and column when it is not valid YAML."""
    from labrador import yamlnodes
    from labrador.userfiles import YAML_FILE, read_text

    return yamlnodes.load(read_text(path, YAML_FILE), path, error)
