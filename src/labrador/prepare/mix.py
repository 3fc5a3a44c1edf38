"""The phase mixes of a labrador generation run: phase 1 (knowledge) and phase 2 (skills), as InstructLab mixes.

Phase 1 holds each knowledge leaf's Q&A and summaries (`dataset: knowledge_p07`). Phase 2 holds the skills
rows (`skills`), each knowledge question again with RAFT documents (`knowledge_p10`: its own chunk and
`raft_distractors` others with probability `raft_gold_ratio`, else only others; closed-book questions as they
are) and a `knowledge_replay_ratio` share of phase 1. Leaves keep the run's order; every choice is seeded.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from labrador.files import read_jsonl
from labrador.prepare.options import PrepareOptions
from labrador.sdg.output import make_record
from labrador.sdg.seeds import leaf_file_name

Rows = list[dict[str, Any]]


def mix_phases(run_dir: Path, leaves: list[dict[str, Any]], options: PrepareOptions) -> dict[str, Rows]:
    """`{"knowledge": rows, "skills": rows}` from the node datasets of `run_dir`; `leaves` are its summary's
    `{"leaf", "kind"}` entries in generation order."""
    stamp = next(run_dir.glob("documents_*.jsonl")).name[len("documents_"):-len(".jsonl")]
    node_dir = run_dir / f"node_datasets_{stamp}"
    documents = {(d["leaf"], d["source_document"], d["chunk_index"]): d["document"]
                 for d in read_jsonl(run_dir / f"documents_{stamp}.jsonl")}
    nodes = {leaf["leaf"]: _read(node_dir / f"{leaf_file_name(leaf['leaf'])}.jsonl") for leaf in leaves}
    pool = sorted({documents[_chunk(r)] for leaf in leaves if leaf["kind"] == "knowledge"
                   for r in nodes[leaf["leaf"]]})
    phases: dict[str, Rows] = {"knowledge": [], "skills": []}
    for leaf in leaves:
        node = nodes[leaf["leaf"]]
        if leaf["kind"] != "knowledge":
            phases["skills"].extend(_relabel(r, "skills") for r in node)
            continue
        summaries = _read(node_dir / f"{leaf_file_name(leaf['leaf'])}_summaries.jsonl")
        phase1 = [_relabel(r, "knowledge_p07") for r in node] + [_remake(r, "knowledge_p07") for r in summaries]
        phases["knowledge"].extend(phase1)
        phases["skills"].extend(_phase2(leaf["leaf"], node, phase1, documents, pool, options))
    return phases


def _phase2(leaf: str, node: Rows, phase1: Rows, documents: dict[tuple, str], pool: list[str],
            options: PrepareOptions) -> Rows:
    out = []
    for index, record in enumerate(node):
        if record["metadata"].get("closed_book"):  # already closed-book: replayed as it is (no documents to add)
            out.append(phase1[index])
            continue
        gold = documents[_chunk(record)]
        question = record["messages"][1]["content"][len(gold) + 2:]  # the user turn is "<chunk>\n\n<question>"
        rng = random.Random(f"{options.seed}|raft|{leaf}|{index}")
        user, raft = raft_user(gold, question, pool, rng, options.raft_distractors, options.raft_gold_ratio)
        meta = {**record["metadata"], "dataset": "knowledge_p10", "raft": raft}
        out.append(make_record(user, record["messages"][2]["content"], meta, unmask=False,
                               system=record["messages"][0]["content"]))
    replay_rng = random.Random(f"{options.seed}|replay|{leaf}")
    return out + [r for r in phase1 if replay_rng.random() < options.knowledge_replay_ratio]


def raft_user(gold: str, question: str, pool: list[str], rng: random.Random, distractors: int,
              gold_ratio: float) -> tuple[str, str]:
    """RAFT: the gold chunk with `distractors` others (probability gold_ratio), else distractors only."""
    others = [c for c in pool if c != gold]
    with_gold = rng.random() < gold_ratio or not others
    picked = rng.sample(others, min(len(others), distractors + (0 if with_gold else 1)))
    docs = [gold, *picked] if with_gold else picked
    rng.shuffle(docs)
    body = "".join(f"Document:\n{d}\n\n" for d in docs)
    return f"{body}{question}", "gold" if with_gold else "distractors_only"


def _chunk(record: dict[str, Any]) -> tuple[Any, ...]:
    meta = record["metadata"]
    return meta["leaf"], meta.get("source_document"), meta.get("chunk_index")


def _relabel(record: dict[str, Any], dataset: str) -> dict[str, Any]:
    """The record in another mix: same id and turns, `metadata.dataset` renamed."""
    return dict(record, metadata={**record["metadata"], "dataset": dataset})


def _remake(record: dict[str, Any], dataset: str) -> dict[str, Any]:
    """A new record (new id) of the same turns for `dataset`."""
    system, user, assistant = (m["content"] for m in record["messages"])
    return make_record(user, assistant, {**record["metadata"], "dataset": dataset}, unmask=record["unmask"],
                       system=system)


def _read(path: Path) -> Rows:
    return read_jsonl(path) if path.is_file() else []
