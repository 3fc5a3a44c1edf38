"""Pipelines: ordered blocks declared in YAML. A pipeline *set* is a directory with one file per leaf kind:
`knowledge.yaml`, `freeform_skill.yaml`, `grounded_skill.yaml` and optionally `knowledge_aux.yaml` (summaries
that become more documents) and `knowledge_facts.yaml` (questions whose answers are the document's sentences).

`--pipeline simple|full` picks a built-in set (package data under sdg/pipelines/); any other value is a path to a
directory laid out the same way (copy a built-in one to start). Prompts named in a user pipeline may be
built-in names or paths relative to the pipeline file.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from labrador.errors import DataError
from labrador.sdg.blocks import BLOCK_TYPES, Block
from labrador.sdg.context import LeafContext
from labrador.sdg.table import Table

BUILTIN = ("simple", "full")
KINDS = ("knowledge", "freeform_skill", "grounded_skill", "knowledge_aux", "knowledge_facts")


@dataclass
class Pipeline:
    name: str  # e.g. simple/knowledge
    path: Path
    blocks: list[Block]

    async def run(self, table: Table, ctx: LeafContext) -> Table:
        for block in self.blocks:
            table = await block.run(table, ctx)
        return table


def load_pipeline(path: Path, name: str) -> Pipeline:
    import yaml

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise DataError(f"{where}: the pipeline is not valid YAML ({getattr(err, 'problem', err)}).") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("blocks"), list):
        raise DataError(f"{path}: a pipeline file needs a top-level 'blocks:' list of "
                        "{type, name, config} entries.")
    blocks: list[Block] = []
    for number, spec in enumerate(raw["blocks"], 1):
        if not isinstance(spec, dict) or "type" not in spec:
            raise DataError(f"{path}: block #{number} needs a 'type' (one of {sorted(BLOCK_TYPES)}).")
        kind = spec["type"]
        if kind not in BLOCK_TYPES:
            raise DataError(f"{path}: block #{number} has unknown type {kind!r}; known: {sorted(BLOCK_TYPES)}.")
        block_name = str(spec.get("name", f"{kind}_{number}"))
        try:
            blocks.append(BLOCK_TYPES[kind](block_name, dict(spec.get("config") or {}), path.parent))
        except DataError as err:
            raise DataError(f"{path}: {err}") from None
    return Pipeline(name, path, blocks)


def pipeline_dir(pipeline: str) -> Path:
    if pipeline in BUILTIN:
        return Path(str(resources.files("labrador.sdg").joinpath("pipelines", pipeline)))
    path = Path(pipeline).expanduser()
    if not path.is_dir():
        raise DataError(f"--pipeline {pipeline!r}: not a built-in pipeline ({', '.join(BUILTIN)}) and not a "
                        "directory. A custom pipeline is a directory with knowledge.yaml, freeform_skill.yaml "
                        "and grounded_skill.yaml (copy src/labrador/sdg/pipelines/simple to start).")
    return path


def load_pipeline_set(pipeline: str) -> dict[str, Pipeline]:
    """kind -> Pipeline for every kind file the set has (a missing kind means those leaves are skipped)."""
    root = pipeline_dir(pipeline)
    label = pipeline if pipeline in BUILTIN else root.name
    found = {kind: load_pipeline(root / f"{kind}.yaml", f"{label}/{kind}")
             for kind in KINDS if (root / f"{kind}.yaml").is_file()}
    if not found:
        raise DataError(f"{root}: no pipeline files found (expected some of {[k + '.yaml' for k in KINDS]}).")
    return found
