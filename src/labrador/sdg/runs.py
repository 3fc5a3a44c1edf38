"""`ilab data list`: find dataset runs (ours, with summary.json, or InstructLab's, by file names)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from labrador.errors import LabradorError
from labrador.userfiles import DATA_FILE, open_binary, read_text


def _lines(paths: list[Path]) -> int:
    total = 0
    for path in paths:
        with open_binary(path) as fh:
            total += sum(1 for line in fh if line.strip())
    return total


def _by_phase(run_dir: Path, info: dict[str, Any]) -> dict[str, int]:
    """Generated rows: labrador's by leaf kind (its summary); InstructLab's by phase mix (their lines)."""
    if "leaves" in info:
        counts = {"knowledge": 0, "skills": 0}
        for leaf in info["leaves"]:
            counts["knowledge" if leaf.get("kind") == "knowledge" else "skills"] += leaf.get("rows", 0)
        return counts
    return {kind: _lines(list(run_dir.glob(f"{kind}_train_msgs_*.jsonl"))) for kind in ("knowledge", "skills")}


def list_dataset_runs(root: Path) -> list[dict[str, Any]]:
    if not root.is_dir():
        return []
    runs = []
    for run_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        messages = list(run_dir.glob("messages_*.jsonl"))
        if not messages:
            continue
        info: dict[str, Any] = {}
        summary = run_dir / "summary.json"
        if summary.is_file():
            try:
                info = json.loads(read_text(summary, DATA_FILE))
            except (ValueError, LabradorError):
                info = {}
        created = info.get("created") or datetime.fromtimestamp(run_dir.stat().st_mtime, UTC).isoformat(
            timespec="seconds")
        runs.append({
            "run": run_dir.name, "path": str(run_dir), "created": created,
            "pipeline": info.get("pipeline", "?"), "teacher": info.get("teacher", "?"),
            "generated": _lines(messages), **_by_phase(run_dir, info),
            "test": _lines(list(run_dir.glob("test_*.jsonl"))),
        })
    return sorted(runs, key=lambda r: r["created"], reverse=True)
