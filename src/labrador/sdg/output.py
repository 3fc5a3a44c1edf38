"""Training records and the files of one run (InstructLab-compatible names and layout; see docs/data.md).

Every record is `{"id", "messages": [system, user, assistant], "metadata": {...}, "unmask"}`; train_/test_
records also carry the legacy `system`/`user`/`assistant` keys so readers of either format can use them.
All files are written into a hidden temporary directory that is renamed to `datasets/<run-id>/` at the end.
"""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


def raft_user(row: dict[str, Any], pool: list[str], rng: random.Random, distractors: int, gold_ratio: float,
              ) -> tuple[str, str]:
    """RAFT: the gold chunk with `distractors` others (probability gold_ratio), else distractors only."""
    gold = str(row.get("raw_document") or row["document"]).strip()
    others = [c for c in pool if c != gold]
    with_gold = rng.random() < gold_ratio or not others
    picked = rng.sample(others, min(len(others), distractors + (0 if with_gold else 1)))
    docs = [gold, *picked] if with_gold else picked
    rng.shuffle(docs)
    body = "".join(f"Document:\n{d}\n\n" for d in docs)
    return f"{body}{str(row['question']).strip()}", "gold" if with_gold else "distractors_only"


class RunWriter:
    """Collects every leaf's records and writes the run's files."""

    def __init__(self, directory: Path, stamp: str, run: dict[str, str], options: Any) -> None:
        self.dir, self.stamp, self.run, self.options = directory, stamp, run, options
        self.node_dir = directory / f"node_datasets_{stamp}"
        self.node_dir.mkdir(parents=True, exist_ok=True)
        self.counts: dict[str, int] = {}

    def _write(self, path: Path, records: list[dict[str, Any]]) -> str:
        with path.open("w", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        rel = path.relative_to(self.dir).as_posix()
        self.counts[rel] = len(records)
        return rel

    def _recipe(self, name: str, entries: list[tuple[str, float | int]]) -> None:
        import yaml

        # `rows` (how many records the file holds) is ours; InstructLab's recipe reader ignores unknown keys
        body = {"datasets": [{"path": p, "sampling_size": s, "rows": self.counts[p]} for p, s in entries],
                "metadata": {"sys_prompt": SYSTEM_PROMPT, "rows": sum(self.counts[p] for p, _ in entries)}}
        (self.dir / f"{name}_{self.stamp}.yaml").write_text(yaml.safe_dump(body, sort_keys=False), encoding="utf-8")

    def write(self, results: list[LeafResult]) -> dict[str, int]:
        opts, stamp = self.options, self.stamp
        everything, train, tests, phase1, phase2 = [], [], [], [], []
        knowledge_recipe: list[tuple[str, float | int]] = []
        skills_recipe: list[tuple[str, float | int]] = []
        pool = sorted({str(r.get("raw_document") or r["document"]).strip()
                       for res in results if res.kind == "knowledge" for r in res.rows})
        for res in results:
            for test in res.tests:
                user = f"{test['context']}\n\n{test['question']}" if test["context"] else test["question"]
                meta = {"leaf": res.rel_path, "leaf_kind": res.kind, "seed_index": test["seed_index"],
                        "dataset": "test", "pipeline": self.run["pipeline"], "teacher": "human"}
                tests.append(make_record(user, test["answer"], meta, unmask=False, legacy=True))
            if not res.rows and not res.aux_rows:
                continue
            node: list[dict[str, Any]] = []
            for row in res.rows:
                meta = _meta(row, res, self.run, "generated")
                if row.get("_closed_book"):
                    meta["closed_book"] = True
                record = make_record(user_turn(row, res.kind), str(row["response"]).strip(), meta,
                                     unmask=res.kind == "knowledge" and not row.get("_closed_book"), legacy=True)
                node.append(record)
                train.append(record)
            everything.extend(node)
            if res.kind != "knowledge":
                skills_recipe.append((self._write(self.node_dir / f"{res.name}.jsonl", node), 1.0))
                phase2.extend(dict(r, metadata={**r["metadata"], "dataset": "skills"}) for r in node)
                continue
            self._write(self.node_dir / f"{res.name}.jsonl", node)
            p07 = [dict(r, metadata={**r["metadata"], "dataset": "knowledge_p07"}) for r in node]
            for row in res.aux_rows:
                meta = {**_meta(row, res, self.run, "knowledge_p07"), "summary_kind": row["summary_kind"]}
                p07.append(make_record(f"{str(row['document']).strip()}\n\n{AUX_INSTRUCTIONS[row['summary_kind']]}",
                                       str(row["summary"]).strip(), meta, unmask=True))
            p10 = []
            for index, row in enumerate(res.rows):
                if row.get("_closed_book"):  # already closed-book: replayed as it is (no documents to add)
                    p10.append(p07[index])
                    continue
                rng = random.Random(f"{opts.seed}|raft|{res.rel_path}|{index}")
                user, raft = raft_user(row, pool, rng, opts.raft_distractors, opts.raft_gold_ratio)
                meta = {**_meta(row, res, self.run, "knowledge_p10"), "raft": raft}
                p10.append(make_record(user, str(row["response"]).strip(), meta, unmask=False))
            replay_rng = random.Random(f"{opts.seed}|replay|{res.rel_path}")
            replay = [r for r in p07 if replay_rng.random() < opts.knowledge_replay_ratio]
            p10.extend(replay)
            knowledge_recipe.append((self._write(self.node_dir / f"{res.name}_p07.jsonl", p07), 1.0))
            skills_recipe.append((self._write(self.node_dir / f"{res.name}_p10.jsonl", p10), 1.0))
            phase1.extend(p07)
            phase2.extend(p10)
        self._write(self.dir / f"messages_{stamp}.jsonl",
                    [{k: r[k] for k in ("id", "messages", "metadata", "unmask")} for r in everything])
        self._write(self.dir / f"train_{stamp}.jsonl", train)
        self._write(self.dir / f"test_{stamp}.jsonl", tests)
        self._write(self.dir / f"knowledge_train_msgs_{stamp}.jsonl", phase1)
        self._write(self.dir / f"skills_train_msgs_{stamp}.jsonl", phase2)
        self._recipe("knowledge_recipe", knowledge_recipe)
        self._recipe("skills_recipe", skills_recipe)
        return self.counts


def record_schema() -> dict[str, Any]:
    """The JSON Schema of one output record (package data: sdg/schemas/record.schema.json)."""
    from importlib import resources

    return json.loads(resources.files("labrador.sdg").joinpath("schemas", "record.schema.json").read_text())
