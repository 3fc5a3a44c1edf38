"""labrador.prepare: decontamination, grounding filter, closed-book copies, seed rows, the entry point and
`ilab data prepare` run as a real command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from labrador.prepare import PrepareOptions, prepare
from labrador.sdg.quality import Decontaminator


def test_prepare_data_drops_contaminated_rows_and_adds_closed_book_and_seed_rows(tmp_path: Path) -> None:
    heldout = tmp_path / "heldout.yaml"
    heldout.write_text("questions:\n  - question: Who founded the town of Kelderwick?\n    key_facts: [Penhallow]\n")
    system = {"role": "system", "content": "sys"}

    def row(user: str, answer: str, dataset: str = "knowledge_p07") -> dict[str, Any]:
        return {"messages": [system, {"role": "user", "content": user}, {"role": "assistant", "content": answer}],
                "metadata": {"leaf_kind": "knowledge", "dataset": dataset}, "unmask": True}

    doc = "Kelderwick was founded in 1742 by Aldous Penhallow, a ferryman."
    rows = [row(f"{doc}\n\nWho founded the town of Kelderwick?", "Aldous Penhallow."),  # leaks a held-out question
            row(f"{doc}\n\nWhat was Aldous Penhallow's job?", "Aldous Penhallow was a ferryman."),  # grounded
            row(f"{doc}\n\nWhen was the Great Flood?", "The Great Flood was in 2020."),  # invented: no copy
            # the question names 2020 but the document does not: the question is not the source
            row(f"{doc}\n\nWhen was the Great Flood of 2020?", "The Great Flood of 2020 was in 2020."),
            # every name is in the document, the claim is not (a sentence no document sentence supports)
            row(f"{doc}\n\nHow did Kelderwick grow?", "Kelderwick grew by trade under a farmer named Aldous Penhallow.")]
    run = tmp_path / "run"  # an InstructLab run: its phase mixes are read as they are
    run.mkdir()
    (run / "knowledge_train_msgs_x.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    options = PrepareOptions(heldout=heldout, self_replay=False)
    leaves = [{"rel_path": "knowledge/k/qna.yaml", "kind": "knowledge", "qna_path": str(tmp_path / "qna.yaml"),
               "seeds": ["In what year was Kelderwick founded?"], "seed_qa": [["In what year?", "In 1742."]]}]
    out = prepare(run, leaves, options, tmp_path / "data")
    assert [r["heldout"] for r in out["removed"]] == ["Who founded the town of Kelderwick?"]
    kept = [json.loads(line) for line in Path(out["files"]["knowledge"]).read_text().splitlines()]
    users = [r["messages"][1]["content"] for r in kept]
    # the invented Great Flood year is dropped (grounded_only); the grounded Q&A also gets a closed-book copy
    assert users == [f"{doc}\n\nWhat was Aldous Penhallow's job?", "What was Aldous Penhallow's job?", "In what year?"]
    assert out["knowledge_ungrounded_dropped"] == 3
    assert out["knowledge_closed_book"] == 1 and out["knowledge_seed_qa"] == 1 and out["knowledge_rows"] == 3
    assert kept[-1]["messages"][0] == system and kept[1]["unmask"] is False

    leaves[0]["seeds"].append("Who founded the town of Kelderwick?")  # a held-out question among the seeds
    with pytest.raises(Exception, match="Held-out questions must be unseen"):
        prepare(run, leaves, options, tmp_path / "data")


def test_decontaminator_catches_copies_and_rewordings_not_topics() -> None:
    checker = Decontaminator(["Who founded the town of Kelderwick?",
                              "In which year did the Lantern Tide Festival take place for the first time?"])
    assert checker.match("who FOUNDED the town of kelderwick") is not None
    assert checker.match("Document:\nsome text.\n\nWho founded the town of Kelderwick, and when?") is not None
    assert checker.match("In which year did the Lantern Tide Festival happen for the first time?") is not None
    assert checker.match("The village is a small part of the town of Kelderwick.") is None
    assert checker.match("In which year was the Copperbell Bridge built?") is None


def test_decontamination_checks_only_the_question_of_fact_rows(tmp_path: Path) -> None:
    heldout = tmp_path / "heldout.yaml"
    heldout.write_text("version: 1\nquestions:\n  - question: How far is Brackenford from the sea at Lune Bay?\n"
                       "    answer: 9 km.\n    key_facts: ['9']\n")
    fact = "Brackenford is 9 km from the sea at Lune Bay."  # a document sentence that answers it, by design

    def row(question: str, closed_book: bool) -> dict:
        return {"id": question, "messages": [{"role": "user", "content": question},
                                            {"role": "assistant", "content": fact}],
                "metadata": {"leaf_kind": "knowledge", "closed_book": closed_book}}

    (tmp_path / "run").mkdir()
    data = tmp_path / "run" / "knowledge_train_msgs_x.jsonl"
    rows = [row("Where is Brackenford?", True), row("Where is Brackenford?", False),
            row("How far is Brackenford from the sea at Lune Bay?", True)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    options = PrepareOptions(heldout=heldout, grounded_only=False, closed_book=False, train_on_seeds=False,
                             self_replay=False)
    result = prepare(tmp_path / "run", [], options, tmp_path / "out")
    kept = [json.loads(line) for line in Path(result["files"]["knowledge"]).read_text().splitlines()]
    assert [(r["messages"][0]["content"], r["metadata"]["closed_book"]) for r in kept] == [
        ("Where is Brackenford?", True)]
    assert len(result["removed"]) == 2


def _ilab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "labrador.cli.main", *args], capture_output=True, text=True,
                          timeout=120, check=False)


def test_ilab_data_prepare_mixes_a_labrador_run(tmp_path: Path) -> None:
    """A run as `ilab data generate` writes it (node datasets, documents, summary) -> the two phase mixes."""
    from labrador.sdg.output import LeafResult, RunWriter

    docs = [f"Brackenford fact {i}: the mill had {i} wheels." for i in range(4)]
    rows = [{"question": f"How many wheels in part {i}?", "response": f"{i % 4} wheels.", "document": docs[i % 4],
             "raw_document": docs[i % 4], "source_document": "b.md", "chunk_index": i % 4, "_seed_index": 0,
             "_meta": {"block": "gen", "prompt_hash": "0123456789ab", "lineage": [f"gen:{i}"]}} for i in range(8)]
    skill = [{"question": "Name a synonym of small.", "response": "Tiny.", "_seed_index": 0, "_meta": {}}]
    results = [LeafResult("knowledge/b/qna.yaml", "knowledge", rows=rows),
               LeafResult("compositional_skills/s/qna.yaml", "freeform_skill", rows=skill)]
    run = tmp_path / "run"
    RunWriter(run, "2026-01-01T00_00_00", {"pipeline": "simple", "teacher": "t"}).write(results)
    (run / "summary.json").write_text(json.dumps({"leaves": [{"leaf": r.rel_path, "kind": r.kind} for r in results]}))
    done = _ilab("data", "prepare", str(run), "--no-self-replay", "--no-grounded-only", "--no-closed-book",
                 "--seed", "3", "--raft-distractors", "2", "--raft-gold-ratio", "1")
    assert done.returncode == 0, done.stderr
    knowledge = (run / "prepared" / "knowledge_train_msgs_decontaminated.jsonl").read_text().splitlines()
    skills = [json.loads(line) for line in
              (run / "prepared" / "skills_train_msgs_decontaminated.jsonl").read_text().splitlines()]
    assert len(knowledge) == 8 and len(skills) == 1 + 8 + 8  # the skill, 8 RAFT copies, phase 1 replayed
    raft = [r for r in skills if r["metadata"]["dataset"] == "knowledge_p10"]
    for record in raft:  # gold ratio 1: its own chunk and 2 others, then the question
        user = record["messages"][1]["content"]
        assert user.count("Document:\n") == 3 and docs[record["metadata"]["chunk_index"]] in user
        assert user.endswith("?") and record["metadata"]["raft"] == "gold"
    # `ilab model train --data-path` finds the prepared files from the run or from the datasets dir above it
    from labrador.train.data import find_data_files

    prepared = [run / "prepared" / "knowledge_train_msgs_decontaminated.jsonl"]
    assert find_data_files(run, "knowledge") == find_data_files(tmp_path, "knowledge") == prepared


def test_ilab_data_prepare_on_an_instructlab_run_and_on_a_bad_directory(tmp_path: Path) -> None:
    run = tmp_path / "datasets" / "2026-01-01T00_00_00_teacher"
    (run / "node_datasets_2026-01-01T00_00_00").mkdir(parents=True)
    system = {"role": "system", "content": "sys"}
    doc = "Brackenford was founded in 1742 by Aldous Penhallow, a ferryman."

    def record(user: str, answer: str, dataset: str, kind: str = "knowledge") -> dict[str, Any]:
        return {"id": user, "messages": [system, {"role": "user", "content": user},
                                         {"role": "assistant", "content": answer}],
                "metadata": json.dumps({"leaf_kind": kind, "dataset": dataset}), "unmask": False}  # InstructLab: a string

    phase1 = [record(f"{doc}\n\nWho founded Brackenford?", "Aldous Penhallow founded it in 1742.", "knowledge_p07"),
              record(f"{doc}\n\nWhen was Brackenford founded?", "In 1742.", "knowledge_p07")]
    phase2 = [record("Name a synonym of small.", "Tiny.", "skills", "freeform_skill"), *phase1]
    for name, rows in (("knowledge", phase1), ("skills", phase2)):
        (run / f"{name}_train_msgs_2026-01-01T00_00_00.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    heldout = tmp_path / "heldout.yaml"
    heldout.write_text("questions:\n  - question: When was Brackenford founded?\n    key_facts: ['1742']\n")
    done = _ilab("data", "prepare", str(run), "--heldout", str(heldout), "--no-self-replay")
    assert done.returncode == 0, done.stderr
    out = run / "prepared"
    knowledge = [json.loads(line) for line in (out / "knowledge_train_msgs_decontaminated.jsonl").read_text().splitlines()]
    # the held-out question's row is gone; the other gets a closed-book copy (the question alone)
    assert [r["messages"][1]["content"] for r in knowledge] == [f"{doc}\n\nWho founded Brackenford?",
                                                                "Who founded Brackenford?"]
    assert knowledge[0]["metadata"] == {"leaf_kind": "knowledge", "dataset": "knowledge_p07"}
    skills = (out / "skills_train_msgs_decontaminated.jsonl").read_text().splitlines()
    assert len(skills) == 3  # the skill row, the kept knowledge row and its copy
    summary = json.loads((out / "prepare_summary.json").read_text())
    assert summary["knowledge_generated"] == 2 and len(summary["removed"]) == 2
    assert "Removed 2 row(s)" in done.stdout

    bad = _ilab("data", "prepare", str(tmp_path))  # a directory without a generation run
    assert bad.returncode == 1
    assert "neither a labrador run" in bad.stderr and "Traceback" not in bad.stderr + bad.stdout
    assert len(bad.stderr.strip().splitlines()) == 1


def test_prepare_options_defaults_and_the_stage_options() -> None:
    assert PrepareOptions().model_dump(include={"grounded_only", "closed_book", "train_on_seeds", "self_replay",
                                                "replay_prompts", "replay_max_tokens", "replay_kl"}) == {
        "grounded_only": True, "closed_book": True, "train_on_seeds": True, "self_replay": True,
        "replay_prompts": None, "replay_max_tokens": 64, "replay_kl": True}
    with pytest.raises(ValueError):
        PrepareOptions(grounded=True)  # a misspelt switch is an error, not ignored


def test_one_decontaminator_serves_seed_echoes_and_heldout_questions() -> None:
    checker = Decontaminator(['Give three synonyms for the word "happy".'])
    assert checker.contaminated("Give three synonyms for the word happy, please?")  # generation: a seed echo
    assert checker.match("Q: give three synonyms for the word happy") is not None  # preparation: held out
    assert not checker.contaminated("Name a colour.") and checker.match("Name a colour.") is None
