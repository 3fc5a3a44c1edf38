"""Self-replay: the bundled prompts are clean of evaluation questions, and `labrador.prepare.prepare` mixes in
the real base student's (SmolLM2, llama.cpp) own answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labrador.errors import DataError
from labrador.eval.questions import load_question_set
from labrador.models.embedded import EMBEDDED_MODEL_NAME
from labrador.prepare import PrepareOptions, prepare, replay

DEMO = Path(__file__).resolve().parents[1] / "src" / "labrador" / "data" / "demo"


def test_bundled_prompts_hold_no_demo_evaluation_question() -> None:
    prompts = replay.load_prompts(replay.bundled_prompts())
    questions = [q.question for name in ("heldout.yaml", "general_check.yaml")
                 for q in load_question_set(DEMO / name).questions]
    kept, dropped = replay.clean_prompts(prompts, questions)
    assert len(prompts) >= 50 and dropped == [] and kept == prompts
    assert not any("Kelderwick" in p for p in prompts)


def test_clean_prompts_drops_evaluation_questions_and_bad_files_are_clear(tmp_path: Path) -> None:
    kept, dropped = replay.clean_prompts(["Name two continents.", "Quick: what is the capital of France?"],
                                         ["What is the capital of France?"])
    assert kept == ["Name two continents."] and dropped == ["Quick: what is the capital of France?"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("prompts: hello\n")
    with pytest.raises(DataError, match="needs a 'prompts:' list"):
        replay.load_prompts(bad)


@pytest.mark.slow
def test_prepare_data_adds_the_base_students_own_answers(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.yaml"
    prompts.write_text("prompts:\n  - Name three primary colors.\n  - What is the capital of France?\n"
                       "  - What is 100 divided by 4?\n")
    general = tmp_path / "general.yaml"
    general.write_text("questions:\n  - question: What is the capital of France?\n    key_facts: [Paris]\n")
    run = tmp_path / "run"  # an InstructLab-style run: the same row in both phase mixes
    run.mkdir()
    data = run / "knowledge_train_msgs_x.jsonl"
    data.write_text(json.dumps({"messages": [{"role": "user", "content": "Q?"}, {"role": "assistant",
                                                                               "content": "A."}],
                                "metadata": {"leaf_kind": "knowledge", "dataset": "knowledge_p07"}}) + "\n")
    options = PrepareOptions(student=EMBEDDED_MODEL_NAME, general_check=general, replay_prompts=prompts,
                             replay_max_tokens=24, threads=1, train_on_seeds=False)
    (run / "skills_train_msgs_x.jsonl").write_bytes(data.read_bytes())
    out = prepare(run, [], options, tmp_path / "data")
    assert out["replay_prompts_dropped"] == ["What is the capital of France?"]  # a general-check question
    assert out["knowledge_self_replay"] == out["skills_self_replay"] == 2
    for kind in ("knowledge", "skills"):
        rows = [json.loads(line) for line in Path(out["files"][kind]).read_text().splitlines()]
        replayed = [r for r in rows if r["metadata"]["dataset"] == "self_replay"]
        assert [r["messages"][1]["content"] for r in replayed] == ["Name three primary colors.",
                                                                   "What is 100 divided by 4?"]
        assert all(r["messages"][0]["role"] == "system" and r["messages"][2]["content"].strip() for r in replayed)
        assert all(r["anchor"] is True for r in replayed)  # trained by KL to the starting model (replay_kl)
    assert "25" in replayed[1]["messages"][2]["content"]  # SmolLM2 answers this one right, greedily
