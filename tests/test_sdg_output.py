"""The run writer: file names, record format (JSON Schema), phase mixes, RAFT, recipes, `ilab data list`."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

from labrador.sdg.context import GenerateOptions
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


def test_writer_files_schema_raft_and_recipes(tmp_path: Path) -> None:
    options = GenerateOptions(seed=1, raft_distractors=3, raft_gold_ratio=0.4)
    aux = [{**knowledge_rows(1)[0], "summary_kind": "summary_detailed", "summary": "A summary."}]
    results = [
        LeafResult("knowledge/town/qna.yaml", "knowledge", rows=knowledge_rows(200), aux_rows=aux,
                   tests=[{"seed_index": 0, "question": "Seed q?", "answer": "Seed a.", "context": "Ctx."}]),
        LeafResult("compositional_skills/syn/qna.yaml", "freeform_skill", rows=skill_rows(7, False),
                   tests=[{"seed_index": 0, "question": "Seed?", "answer": "Yes.", "context": ""}]),
        LeafResult("compositional_skills/read/qna.yaml", "grounded_skill", rows=skill_rows(3, True)),
        LeafResult("compositional_skills/broken/qna.yaml", "freeform_skill", error="teacher failed"),
    ]
    stamp = "2026-01-01T00_00_00"
    counts = RunWriter(tmp_path, stamp, {"pipeline": "simple", "teacher": "t"}, options).write(results)
    validator = jsonschema.Draft202012Validator(record_schema())
    for rel, count in counts.items():
        lines = (tmp_path / rel).read_text().splitlines()
        assert len(lines) == count
        for line in lines:
            validator.validate(json.loads(line))
    assert counts[f"messages_{stamp}.jsonl"] == 210 and counts[f"train_{stamp}.jsonl"] == 210
    assert counts[f"test_{stamp}.jsonl"] == 2
    node = f"node_datasets_{stamp}"
    assert counts[f"{node}/compositional_skills_syn.jsonl"] == 7
    assert counts[f"{node}/knowledge_town_p07.jsonl"] == 201  # Q&A + one auxiliary summary
    assert counts[f"knowledge_train_msgs_{stamp}.jsonl"] == 201
    assert counts[f"skills_train_msgs_{stamp}.jsonl"] == 7 + 3 + 200 + 201  # skills + RAFT + replay
    p10 = [json.loads(line) for line in (tmp_path / node / "knowledge_town_p10.jsonl").read_text().splitlines()]
    raft = [r for r in p10 if r["metadata"]["dataset"] == "knowledge_p10"]
    gold = [r for r in raft if r["metadata"]["raft"] == "gold"]
    assert 0.25 < len(gold) / len(raft) < 0.55  # about --raft-gold-ratio
    for record in raft:
        user = record["messages"][1]["content"]
        own = record["metadata"]["chunk_index"]
        assert user.count("Document:\n") in (3, 4)  # the pool has 4 chunks: gold + 3, or the 3 others
        assert (f"Chunk {own} text." in user) == (record["metadata"]["raft"] == "gold")
    train = json.loads((tmp_path / f"train_{stamp}.jsonl").read_text().splitlines()[-1])
    assert train["user"] == "Context 2.\n\nQ2?" and train["messages"][0]["role"] == "system"
    recipe = yaml.safe_load((tmp_path / f"skills_recipe_{stamp}.yaml").read_text())
    assert {d["path"] for d in recipe["datasets"]} == {f"{node}/compositional_skills_syn.jsonl",
                                                      f"{node}/compositional_skills_read.jsonl",
                                                      f"{node}/knowledge_town_p10.jsonl"}
    assert recipe["metadata"]["sys_prompt"]
    for entry in recipe["datasets"]:  # the row count of each file in the mix, and of the whole mix
        assert entry["rows"] == len((tmp_path / entry["path"]).read_text().splitlines()) > 0
    assert recipe["metadata"]["rows"] == sum(d["rows"] for d in recipe["datasets"])
    # a second write of the same results is byte-identical (content-derived ids, seeded choices)
    again = tmp_path / "again"
    again.mkdir()
    RunWriter(again, stamp, {"pipeline": "simple", "teacher": "t"}, options).write(results)
    assert (again / f"skills_train_msgs_{stamp}.jsonl").read_bytes() == (
        tmp_path / f"skills_train_msgs_{stamp}.jsonl").read_bytes()


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
