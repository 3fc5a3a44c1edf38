"""What `ilab data prepare` reads: a generation run's rows by phase, and the taxonomy leaves they came from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from labrador.errors import DataError
from labrador.files import read_jsonl
from labrador.prepare.options import PrepareOptions
from labrador.userfiles import DATA_FILE, read_text

PHASES = ("knowledge", "skills")


def load_phases(dataset_dir: Path, options: PrepareOptions) -> dict[str, list[dict[str, Any]]]:
    """`{"knowledge": rows, "skills": rows}` of a run directory of `ilab data generate`: labrador's (node
    datasets, mixed here, `labrador.prepare.mix`) or InstructLab's (its mixed `knowledge_train_msgs_*.jsonl`
    and `skills_train_msgs_*.jsonl`, read as they are)."""
    if not dataset_dir.is_dir():
        raise DataError(f"{dataset_dir}: not a directory; pass the run directory that `ilab data generate` wrote.")
    summary = dataset_dir / "summary.json"
    if any(dataset_dir.glob("documents_*.jsonl")) and summary.is_file():
        from labrador.prepare.mix import mix_phases

        leaves = json.loads(read_text(summary, DATA_FILE))["leaves"]
        return mix_phases(dataset_dir, leaves, options)
    found = {kind: sorted(dataset_dir.glob(f"{kind}_train_msgs_*.jsonl")) for kind in PHASES}
    if not any(found.values()):
        raise DataError(f"{dataset_dir}: neither a labrador run (summary.json, documents_*.jsonl) nor "
                        f"InstructLab's mixes (knowledge_train_msgs_*.jsonl, skills_train_msgs_*.jsonl); pass "
                        f"the run directory that `ilab data generate` wrote.")
    return {kind: [row for path in paths for row in load_rows(path)] for kind, paths in found.items()}


def load_rows(path: Path) -> list[dict[str, Any]]:
    """A phase file's records. InstructLab writes `metadata` as a JSON string; it is read as the object."""
    rows = read_jsonl(path)
    for row in rows:
        if isinstance(row.get("metadata"), str):
            row["metadata"] = json.loads(row["metadata"])
    return rows


def taxonomy_seeds(taxonomy_path: Path, taxonomy_base: str) -> list[dict[str, Any]]:
    """`leaf_seeds` of every new or changed leaf of the taxonomy (its seeds are checked and trained on)."""
    from labrador.prepare.rows import leaf_seeds
    from labrador.taxonomy import load_leaves

    return [leaf_seeds(leaf) for leaf in load_leaves(taxonomy_path, taxonomy_base)]
