"""What `ilab data prepare` reads: a generation run's phase files and the taxonomy leaves they came from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labrador.errors import DataError


def find_generated(dataset_dir: Path) -> dict[str, list[str]]:
    """The phase files of a run directory written by `ilab data generate` (labrador or InstructLab):
    `knowledge_train_msgs_*.jsonl` (phase 1) and `skills_train_msgs_*.jsonl` (phase 2), newest name last."""
    if not dataset_dir.is_dir():
        raise DataError(f"{dataset_dir}: not a directory; pass the run directory that `ilab data generate` wrote "
                        f"(it holds knowledge_train_msgs_*.jsonl and skills_train_msgs_*.jsonl).")
    found = {kind: [str(p) for p in sorted(dataset_dir.glob(f"{kind}_train_msgs_*.jsonl"))]
             for kind in ("knowledge", "skills")}
    if not any(found.values()):
        raise DataError(f"{dataset_dir}: no knowledge_train_msgs_*.jsonl or skills_train_msgs_*.jsonl; pass the "
                        f"run directory that `ilab data generate` wrote.")
    return found


def taxonomy_seeds(taxonomy_path: Path, taxonomy_base: str) -> list[dict[str, Any]]:
    """`leaf_seeds` of every new or changed leaf of the taxonomy (its seeds are checked and trained on)."""
    from labrador.prepare.rows import leaf_seeds
    from labrador.taxonomy import load_leaves

    return [leaf_seeds(leaf) for leaf in load_leaves(taxonomy_path, taxonomy_base)]
