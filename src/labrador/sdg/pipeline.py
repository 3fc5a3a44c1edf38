"""Pipelines: ordered blocks declared in YAML, and the steps each kind of taxonomy leaf runs.

A pipeline *set* is a directory of pipeline files (`knowledge.yaml`, `freeform_skill.yaml`,
`grounded_skill.yaml`, `knowledge_aux.yaml`, `knowledge_facts.yaml`, ...) and an index, `leaves.yaml`, that
lists for each kind of leaf the pipelines it runs, in order, and what each step reads and gives (see
`LeafFlow`). A directory without `leaves.yaml` runs `<kind>.yaml` alone for each kind of leaf it has a file for.

`--pipeline simple|full` picks a built-in set (package data under sdg/pipelines/); any other value is a path to a
directory laid out the same way (copy a built-in one to start). Prompts named in a user pipeline may be
built-in names or paths relative to the pipeline file. Block types come from `labrador.sdg.registry`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from labrador.errors import DataError
from labrador.files import read_yaml
from labrador.sdg import blocks, fact_blocks  # noqa: F401 - importing them registers the built-in blocks
from labrador.sdg.context import LeafContext
from labrador.sdg.registry import Block, block_class
from labrador.sdg.table import Row, Table

BUILTIN = ("simple", "full")
LEAF_KINDS = ("knowledge", "freeform_skill", "grounded_skill")
INDEX = "leaves.yaml"


@dataclass
class Pipeline:
    name: str  # e.g. simple/knowledge
    path: Path
    blocks: list[Block]

    async def run(self, table: Table, ctx: LeafContext) -> Table:
        for block in self.blocks:
            table = await block.run(table, ctx)
        return table


@dataclass
class Step:
    """One pipeline of a leaf's flow. `input`: "all" rows of the leaf's table, or its "chunks" alone (the rows
    it started with, without documents that an earlier step added). `samples`: the number of samples each input
    row asks for, instead of the leaf's scale factor. `output`: "rows" of generated data, or "documents": the
    rows with a non-empty `summary` are auxiliary data and join the table as documents for the later steps."""

    pipeline: Pipeline
    key: str  # the pipeline file's name without .yaml
    input: str = "all"
    samples: int | None = None
    output: str = "rows"


@dataclass
class LeafFlow:
    """The steps one kind of leaf runs, in order, and the order their rows are written in (`rows`)."""

    steps: list[Step]
    rows: list[str] = field(default_factory=list)

    @property
    def pipelines(self) -> list[Pipeline]:
        return [step.pipeline for step in self.steps]

    async def run(self, table: Table, ctx: LeafContext) -> tuple[Table, list[Row]]:
        """The leaf's generated rows and its auxiliary rows (summaries)."""
        chunks = table
        outputs: dict[str, Table] = {}
        aux_rows: list[Row] = []
        for step in self.steps:
            rows = chunks if step.input == "chunks" else table
            if step.samples is not None:
                rows = rows.map(lambda r, n=step.samples: {**r, "_num_samples": n})
            ctx.pipeline = step.pipeline.name
            out = await step.pipeline.run(rows, ctx)
            if step.output == "documents":
                documents = [r for r in out if str(r.get("summary", "")).strip()]
                aux_rows += documents
                # Each summary is also a document to generate Q&A from; the user turn keeps the raw chunk.
                table = table.concat(Table({**r, "document": r["summary"], "_num_samples": 1} for r in documents))
            else:
                outputs[step.key] = out
        written = Table()
        for key in self.rows:
            written = written.concat(outputs.get(key, Table()))
        return written, aux_rows


def load_pipeline(path: Path, name: str) -> Pipeline:
    raw = read_yaml(path)
    if not isinstance(raw, dict) or not isinstance(raw.get("blocks"), list):
        raise DataError(f"{path}: a pipeline file needs a top-level 'blocks:' list of "
                        "{type, name, config} entries.")
    language = raw.get("language")
    pipeline_blocks: list[Block] = []
    for number, spec in enumerate(raw["blocks"], 1):
        if not isinstance(spec, dict) or "type" not in spec:
            raise DataError(f"{path}: block #{number} needs a 'type' (a registered block type).")
        kind = spec["type"]
        try:
            cls = block_class(kind)
        except DataError as err:
            raise DataError(f"{path}: block #{number}: {err}") from None
        if cls.language is not None and cls.language != language:
            raise DataError(f"{path}: block #{number} ({kind}) applies {cls.language} text rules; a pipeline that "
                            f"uses it declares 'language: {cls.language}' at its top.")
        try:
            pipeline_blocks.append(cls(str(spec.get("name", f"{kind}_{number}")), dict(spec.get("config") or {}),
                                       path.parent))
        except DataError as err:
            raise DataError(f"{path}: {err}") from None
    return Pipeline(name, path, pipeline_blocks)


def pipeline_dir(pipeline: str) -> Path:
    if pipeline in BUILTIN:
        return Path(str(resources.files("labrador.sdg").joinpath("pipelines", pipeline)))
    path = Path(pipeline).expanduser()
    if not path.is_dir():
        raise DataError(f"--pipeline {pipeline!r}: not a built-in pipeline ({', '.join(BUILTIN)}) and not a "
                        f"directory. A custom pipeline is a directory with {INDEX} and the pipeline files it "
                        "names (copy src/labrador/sdg/pipelines/simple to start).")
    return path


def _index(root: Path) -> dict[str, Any]:
    """leaves.yaml as {kind: {steps: [...], rows: [...]}}, or one step per `<kind>.yaml` when there is none."""
    path = root / INDEX
    if not path.is_file():
        return {kind: {"steps": [{"pipeline": kind}]} for kind in LEAF_KINDS}
    raw = read_yaml(path)
    if not isinstance(raw, dict) or not all(isinstance(v, dict) and isinstance(v.get("steps"), list)
                                            for v in raw.values()):
        raise DataError(f"{path}: the index needs, for each kind of leaf, a 'steps:' list of "
                        "{pipeline, input, samples, output} entries.")
    return raw


def _step(spec: Any, root: Path, label: str) -> Step | None:
    """The step `spec` of leaves.yaml, or None when its pipeline file is not in the directory (turned off)."""
    where = root / INDEX
    if not isinstance(spec, dict) or "pipeline" not in spec:
        raise DataError(f"{where}: each step needs a 'pipeline' (the name of a pipeline file without .yaml).")
    key = str(spec["pipeline"])
    if spec.get("input", "all") not in ("all", "chunks") or spec.get("output", "rows") not in ("rows", "documents"):
        raise DataError(f"{where}: step {key!r}: input must be all or chunks, output rows or documents.")
    path = root / f"{key}.yaml"
    if not path.is_file():
        return None
    samples = spec.get("samples")
    return Step(load_pipeline(path, f"{label}/{key}"), key, spec.get("input", "all"),
                None if samples is None else int(samples), spec.get("output", "rows"))


def _flow(kind: str, spec: dict[str, Any], root: Path, label: str) -> LeafFlow | None:
    steps = [s for s in (_step(one, root, label) for one in spec["steps"]) if s is not None]
    if not steps:
        return None
    named = {str(one["pipeline"]): one.get("output", "rows") for one in spec["steps"]}
    order = [str(k) for k in spec.get("rows", [k for k, output in named.items() if output == "rows"])]
    if set(order) != {k for k, output in named.items() if output == "rows"} or len(order) != len(set(order)):
        raise DataError(f"{root / INDEX}: {kind}: 'rows' must list each step whose output is rows once, not "
                        f"{order}.")
    present = {s.key for s in steps}
    return LeafFlow(steps, [k for k in order if k in present])


def load_pipeline_set(pipeline: str) -> dict[str, LeafFlow]:
    """kind of leaf -> LeafFlow for every kind the set has pipelines for (leaves of other kinds are skipped)."""
    root = pipeline_dir(pipeline)
    label = pipeline if pipeline in BUILTIN else root.name
    flows = {kind: flow for kind, spec in _index(root).items() if (flow := _flow(kind, spec, root, label))}
    if not flows:
        raise DataError(f"{root}: no pipeline files found (expected {INDEX} or some of "
                        f"{[k + '.yaml' for k in LEAF_KINDS]}).")
    return flows
