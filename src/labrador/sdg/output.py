"""Training records and the files of one run (InstructLab-compatible names and layout; see docs/data.md).

Every record is `{"id", "messages": [system, user, assistant], "metadata": {...}, "unmask"}`; train_/test_
records also carry the legacy `system`/`user`/`assistant` keys so readers of either format can use them.
All files are written into a hidden temporary directory that is renamed to `datasets/<run-id>/` at the end.
Knowledge leaves also get their summaries and the chunks their questions were asked on, which
`labrador.prepare` needs for the phase mixes (phase 1: Q&A + summaries; phase 2: RAFT + replay).
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labrador.files import write_jsonl
from labrador.sdg.seeds import leaf_file_name

SYSTEM_PROMPT = ("I am a helpful AI assistant trained with the LAB method. I answer questions accurately and "
                 "follow the user's instructions.")
AUX_INSTRUCTIONS = {
    "summary_detailed": "Give a detailed summary of the document above.",
    "summary_extractive": "List the most important sentences of the document above.",
    "summary_atomic_facts": "List the facts stated in the document above, one per line.",
}
_ID_NAMESPACE = uuid.UUID("6f1c1a52-5c8e-4c7b-9a53-3f0e1b8d2c11")


@dataclass
class LeafResult:
    rel_path: str
    kind: str
    rows: list[dict[str, Any]] = field(default_factory=list)  # generated rows that passed the guards
    aux_rows: list[dict[str, Any]] = field(default_factory=list)  # knowledge summaries
    tests: list[dict[str, Any]] = field(default_factory=list)  # human seed examples
    dropped: Counter[str] = field(default_factory=Counter)
    error: str | None = None
    seconds: float = 0.0

    @property
    def name(self) -> str:
        return leaf_file_name(self.rel_path)


def make_record(user: str, assistant: str, metadata: dict[str, Any], *, unmask: bool,
                system: str = SYSTEM_PROMPT, legacy: bool = False) -> dict[str, Any]:
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user},
                {"role": "assistant", "content": assistant}]
    # Content-derived ids: a re-run that replays the cache writes byte-identical files.
    ident = uuid.uuid5(_ID_NAMESPACE, json.dumps([messages, metadata.get("lineage"), metadata.get("dataset")],
                                                 sort_keys=True))
    record: dict[str, Any] = {"id": str(ident), "messages": messages, "metadata": metadata, "unmask": unmask}
    if legacy:
        record.update(system=system, user=user, assistant=assistant)
    return record


def _meta(row: dict[str, Any], result: LeafResult, run: dict[str, str], dataset: str) -> dict[str, Any]:
    meta = row.get("_meta", {})
    out: dict[str, Any] = {"leaf": result.rel_path, "leaf_kind": result.kind, "seed_index": row.get("_seed_index"),
                           "pipeline": run["pipeline"], "block": meta.get("block"),
                           "prompt_hash": meta.get("prompt_hash"), "teacher": run["teacher"],
                           "lineage": meta.get("lineage", []), "dataset": dataset}
    if result.kind == "knowledge":
        out.update(source_document=row.get("source_document"), chunk_index=row.get("chunk_index"))
    return out


def user_turn(row: dict[str, Any], kind: str) -> str:
    question = str(row["question"]).strip()
    if row.get("_closed_book"):  # knowledge facts: asked as users ask, without the document
        return question
    if kind == "knowledge":
        return f"{str(row.get('raw_document') or row['document']).strip()}\n\n{question}"
    if kind == "grounded_skill":
        return f"{str(row['context']).strip()}\n\n{question}"
    return question


class RunWriter:
    """Collects every leaf's records and writes the run's files (the phase mixes are `labrador.prepare`'s)."""

    def __init__(self, directory: Path, stamp: str, run: dict[str, str]) -> None:
        self.dir, self.stamp, self.run = directory, stamp, run
        self.node_dir = directory / f"node_datasets_{stamp}"
        self.node_dir.mkdir(parents=True, exist_ok=True)
        self.counts: dict[str, int] = {}

    def _write(self, path: Path, records: list[dict[str, Any]]) -> None:
        write_jsonl(path, records)
        self.counts[path.relative_to(self.dir).as_posix()] = len(records)

    def write(self, results: list[LeafResult]) -> dict[str, int]:
        generated, tests = [], []
        documents: dict[tuple[Any, ...], str] = {}
        for res in results:
            tests.extend(self._test_record(res, test) for test in res.tests)
            if not res.rows and not res.aux_rows:
                continue
            node = [self._record(res, row) for row in res.rows]
            generated.extend(node)
            self._write(self.node_dir / f"{res.name}.jsonl", node)
            if res.kind == "knowledge":
                self._write(self.node_dir / f"{res.name}_summaries.jsonl",
                            [self._summary_record(res, row) for row in res.aux_rows])
                for row in res.rows:
                    _add_document(documents, res.rel_path, row)
        self._write(self.dir / f"messages_{self.stamp}.jsonl",
                    [{k: r[k] for k in ("id", "messages", "metadata", "unmask")} for r in generated])
        self._write(self.dir / f"train_{self.stamp}.jsonl", generated)
        self._write(self.dir / f"test_{self.stamp}.jsonl", tests)
        self._write(self.dir / f"documents_{self.stamp}.jsonl",
                    [{"leaf": k[0], "source_document": k[1], "chunk_index": k[2], "document": text}
                     for k, text in documents.items()])
        return self.counts

    def _record(self, res: LeafResult, row: dict[str, Any]) -> dict[str, Any]:
        meta = _meta(row, res, self.run, "generated")
        if row.get("_closed_book"):
            meta["closed_book"] = True
        return make_record(user_turn(row, res.kind), str(row["response"]).strip(), meta,
                           unmask=res.kind == "knowledge" and not row.get("_closed_book"), legacy=True)

    def _summary_record(self, res: LeafResult, row: dict[str, Any]) -> dict[str, Any]:
        meta = {**_meta(row, res, self.run, "summaries"), "summary_kind": row["summary_kind"]}
        return make_record(f"{str(row['document']).strip()}\n\n{AUX_INSTRUCTIONS[row['summary_kind']]}",
                           str(row["summary"]).strip(), meta, unmask=True)

    def _test_record(self, res: LeafResult, test: dict[str, Any]) -> dict[str, Any]:
        user = f"{test['context']}\n\n{test['question']}" if test["context"] else test["question"]
        meta = {"leaf": res.rel_path, "leaf_kind": res.kind, "seed_index": test["seed_index"],
                "dataset": "test", "pipeline": self.run["pipeline"], "teacher": "human"}
        return make_record(user, test["answer"], meta, unmask=False, legacy=True)


def _add_document(documents: dict[tuple[Any, ...], str], leaf: str, row: dict[str, Any]) -> None:
    """The chunk a knowledge row was asked on, by (leaf, source_document, chunk_index): RAFT's gold document."""
    key = (leaf, row.get("source_document"), row.get("chunk_index"))
    text = str(row.get("raw_document") or row["document"]).strip()
    if documents.setdefault(key, text) != text:
        raise ValueError(f"{leaf}: two different texts for chunk {key[2]} of {key[1]}")


def record_schema() -> dict[str, Any]:
    """The JSON Schema of one output record (package data: sdg/schemas/record.schema.json)."""
    from importlib import resources

    return json.loads(resources.files("labrador.sdg").joinpath("schemas", "record.schema.json").read_text())
