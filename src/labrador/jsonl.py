"""Reading JSONL files whose bad lines are reported by file and line number (one JSON object per line)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from labrador.errors import DataError


def iter_objects(path: Path, expected: str = "one JSON object") -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line; DataError naming `path:line` for a line that is not
    valid JSON or not an object. `expected` words what a line should hold, for the message."""
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{n}: not valid JSON ({err.msg}); each line must be {expected}.") from None
        if not isinstance(row, dict):
            raise DataError(f"{path}:{n}: expected {expected}, found {type(row).__name__}.")
        yield n, row
