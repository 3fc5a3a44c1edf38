"""The run writer (file names, record format), the phase mixes of `labrador.prepare` (RAFT, replay), `ilab data list`."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from labrador.prepare.mix import mix_phases
from labrador.prepare.options import PrepareOptions
from labrador.sdg.output import LeafResult, RunWriter, record_schema
from labrador.sdg.runs import list_dataset_runs


def knowledge_rows(n: int) -> list[dict]:
    return [{"question": f"What happened in year {1800 + i}?", "response": f"Event {i}.",
             "document": f"Chunk {i % 4} text.", "raw_document": f"Chunk {i % 4} text.",
             "source_document": "town.md", "chunk_index": i % 4, "_seed_index": i % 5,
             "_meta": {"block": "gen_knowledge_qa", "prompt_hash": "0123456789ab", "sample_index": 0,
                       "lineage": [f"gen_knowledge_qa:0123456789ab:{i}"]}} for i in range(n)]


def skill_rows(n: int, grounded: bool) -> list[dict]:
    return [{"question": f"Q{i}?", "response": f"A{i}.", **({"context": f"Context {i}."} if grounded else {}),
             "_seed_index": i % 5, "_meta": {"block": "gen", "prompt_hash": "abcdefabcdef", "sample_index": 0,
                                             "lineage": [f"gen:abcdefabcdef:{i}"]}} for i in range(n)]


def write_run(directory: Path, results: list[LeafResult], stamp: str) -> dict[str, int]:
    counts = RunWriter(directory, stamp, {"pipeline": "simple", "teacher": "t"}).write(results)
    leaves = [{"leaf": r.rel_path, "kind": r.kind, "rows": len(r.rows), "aux_rows": len(r.aux_rows)} for r in results]
    (directory / "summary.json").write_text(json.dumps({"leaves": leaves, "created": "2026-01-01"}))
    return counts


def sample_results() -> list[LeafResult]:
    aux = [{**knowledge_rows(1)[0], "summary_kind": "summary_detailed", "summary": "A summary."}]
    return [
        LeafResult("knowledge/town/qna.yaml", "knowledge", rows=knowledge_rows(200), aux_rows=aux,
                   tests=[{"seed_index": 0, "question": "Seed q?", "answer": "Seed a.", "context": "Ctx."}]),
        LeafResult("compositional_skills/syn/qna.yaml", "freeform_skill", rows=skill_rows(7, False),
                   tests=[{"seed_index": 0, "question": "Seed?", "answer": "Yes.", "context": ""}]),
        LeafResult("compositional_skills/read/qna.yaml", "grounded_skill", rows=skill_rows(3, True)),
        LeafResult("compositional_skills/broken/qna.yaml", "freeform_skill", error="teacher failed"),
    ]


def test_writer_files_and_schema(tmp_path: Path) -> None:
    stamp = "2026-01-01T00_00_00"
    counts = write_run(tmp_path, sample_results(), stamp)
    validator = jsonschema.Draft202012Validator(record_schema())
    for rel, count in counts.items():
        lines = (tmp_path / rel).read_text().splitlines()
        assert len(lines) == count
        if not rel.startswith("documents_"):
            for line in lines:
                validator.validate(json.loads(line))
    assert counts[f"messages_{stamp}.jsonl"] == 210 and counts[f"train_{stamp}.jsonl"] == 210
    assert counts[f"test_{stamp}.jsonl"] == 2
    node = f"node_datasets_{stamp}"
    assert counts[f"{node}/compositional_skills_syn.jsonl"] == 7
    assert counts[f"{node}/knowledge_town.jsonl"] == 200
    assert counts[f"{node}/knowledge_town_summaries.jsonl"] == 1
    documents = [json.loads(line) for line in (tmp_path / f"documents_{stamp}.jsonl").read_text().splitlines()]
    assert sorted(d["chunk_index"] for d in documents) == [0, 1, 2, 3]  # one line per chunk, not per row
    train = json.loads((tmp_path / f"train_{stamp}.jsonl").read_text().splitlines()[-1])
    assert train["user"] == "Context 2.\n\nQ2?" and train["messages"][0]["role"] == "system"


def test_phase_mixes_raft_and_replay(tmp_path: Path) -> None:
    stamp = "2026-01-01T00_00_00"
    results = sample_results()
    write_run(tmp_path, results, stamp)
    leaves = json.loads((tmp_path / "summary.json").read_text())["leaves"]
    options = PrepareOptions(seed=1, raft_distractors=3, raft_gold_ratio=0.4)
    phases = mix_phases(tmp_path, leaves, options)
    assert len(phases["knowledge"]) == 201  # Q&A + one auxiliary summary
    assert {r["metadata"]["dataset"] for r in phases["knowledge"]} == {"knowledge_p07"}
    assert len(phases["skills"]) == 7 + 3 + 200 + 201  # skills + RAFT + replay of phase 1
    raft = [r for r in phases["skills"] if r["metadata"]["dataset"] == "knowledge_p10"]
    gold = [r for r in raft if r["metadata"]["raft"] == "gold"]
    assert 0.25 < len(gold) / len(raft) < 0.55  # about --raft-gold-ratio
    for record in raft:
        user = record["messages"][1]["content"]
        own = record["metadata"]["chunk_index"]
        assert user.count("Document:\n") in (3, 4)  # the pool has 4 chunks: gold + 3, or the 3 others
        assert (f"Chunk {own} text." in user) == (record["metadata"]["raft"] == "gold")
        assert user.rsplit("\n\n", 1)[1].startswith("What happened in year")  # the question, after the documents
    assert len(mix_phases(tmp_path, leaves, options.model_copy(update={"knowledge_replay_ratio": 0.0}))[
        "skills"]) == 7 + 3 + 200
    # the same run and seed mix to the same rows; another seed picks other RAFT documents
    assert mix_phases(tmp_path, leaves, options) == phases
    assert mix_phases(tmp_path, leaves, options.model_copy(update={"seed": 2})) != phases


def test_list_runs_reads_summaries_and_skips_partial(tmp_path: Path) -> None:
    run = tmp_path / "2026-01-01T00_00_00_t"
    run.mkdir()
    (run / "messages_x.jsonl").write_text('{"a": 1}\n{"a": 2}\n')
    (run / "test_x.jsonl").write_text('{"a": 1}\n')
    (run / "summary.json").write_text(json.dumps({"pipeline": "full", "teacher": "t", "created": "2026-01-01"}))
    (tmp_path / ".2026-01-02_t.partial").mkdir()
    runs = list_dataset_runs(tmp_path)
    assert [(r["run"], r["generated"], r["test"], r["pipeline"]) for r in runs] == [(run.name, 2, 1, "full")]
    assert list_dataset_runs(tmp_path / "missing") == []
