"""mmlu and mmlu_branch end to end on the embedded SmolLM2 (llama.cpp in-process), plus the MMLU choice checked
against log-probabilities computed by hand from llama.cpp's raw logits."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from labrador.eval.calls import Model
from labrador.eval.multiple_choice import LETTERS, MCQuestion, build_prompt, score_question
from labrador.eval.runner import EvalOptions, run_evaluation

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client(smollm_client: Any) -> Any:
    return smollm_client


def test_mmlu_choice_matches_hand_computed_log_likelihoods(smollm_gguf: Path, client) -> None:
    import llama_cpp

    q = MCQuestion("Which planet is known as the Red Planet?", ("Venus", "Mars", "Jupiter", "Saturn"), 1,
                   subject="astronomy")
    prompt = build_prompt(q)
    llm = llama_cpp.Llama(model_path=str(smollm_gguf), n_ctx=512, n_threads=1, logits_all=True, verbose=False)
    try:
        context = llm.tokenize(prompt.encode(), add_bos=True)
        llm.eval(context)
        logits = np.asarray(llm.scores[len(context) - 1], dtype=np.float64)
        log_probs = logits - logits.max() - np.log(np.exp(logits - logits.max()).sum())
        by_hand = []
        for letter in LETTERS:
            full = llm.tokenize(f"{prompt} {letter}".encode(), add_bos=True)
            assert full[: len(context)] == context and len(full) == len(context) + 1  # " X" is one token
            by_hand.append(float(log_probs[full[-1]]))
    finally:
        llm.close()
    result = score_question(Model("smollm", client, "fp").loglikelihoods, q)
    assert result.loglikelihoods == pytest.approx(by_hand, abs=2e-3)
    assert result.predicted == int(np.argmax(by_hand))


def _write_tasks(tasks: Path) -> None:
    """20 questions in two subjects and both formats, plus a dev file (few-shot pool; unused at 0 shots)."""
    tasks.mkdir()
    with (tasks / "arithmetic_test.jsonl").open("w") as fh:
        for i in range(1, 11):
            fh.write(json.dumps({"question": f"What is {i} + {i}?", "answer": i % 4,
                                 "choices": [str(2 * i) if k == i % 4 else str(2 * i + k + 1) for k in range(4)]})
                     + "\n")
    (tasks / "arithmetic_dev.jsonl").write_text(
        json.dumps({"question": "What is 10 + 5?", "choices": ["12", "15", "16", "50"], "answer": "B"}) + "\n")
    capitals = [("France", "Paris"), ("Italy", "Rome"), ("Norway", "Oslo"), ("Spain", "Madrid"),
                ("Japan", "Tokyo"), ("Egypt", "Cairo"), ("Peru", "Lima"), ("Kenya", "Nairobi"),
                ("Canada", "Ottawa"), ("Greece", "Athens")]
    lines = []
    for i, (country, city) in enumerate(capitals):
        others = [c for _, c in capitals if c != city][i % 5: i % 5 + 3]
        choices = others[: i % 4] + [city] + others[i % 4:]
        lines.append(",".join([f"What is the capital of {country}?", *choices, LETTERS[i % 4]]))
    (tasks / "geography_test.csv").write_text("\n".join(lines) + "\n")


def test_mmlu_end_to_end_on_local_tasks(tmp_path: Path, smollm_gguf: Path, client) -> None:
    _write_tasks(tmp_path / "tasks")
    console_out = io.StringIO()
    spec = str(smollm_gguf)
    outcome = run_evaluation(EvalOptions(benchmark="mmlu", model=spec, tasks_dir=tmp_path / "tasks", few_shots=0,
                                         output_dir=tmp_path / "results"),
                             Console(file=console_out, width=120), clients={spec: client})
    s = outcome.summary
    assert s["questions"] == 20 and set(s["subjects"]) == {"arithmetic", "geography"}
    assert all(0.0 <= v["accuracy"] <= 1.0 for v in s["subjects"].values())
    assert s["overall"] == pytest.approx(sum(v["accuracy"] for v in s["subjects"].values()) / 2)
    assert outcome.results_dir.parent == tmp_path / "results" and not outcome.results_dir.name.startswith(".")
    items = [json.loads(line) for line in (outcome.results_dir / "items.jsonl").read_text().splitlines()]
    assert len(items) == 20 and all(len(i["loglikelihoods"]) == 4 for i in items)
    assert json.loads((outcome.results_dir / "summary.json").read_text())["overall"] == s["overall"]
    assert "overall (mean of subjects)" in console_out.getvalue()
    assert not list((tmp_path / "results").glob(".*.partial"))


def test_mmlu_branch_from_task_files_compares_base_and_tuned(tmp_path: Path, smollm_gguf: Path, client) -> None:
    tasks = tmp_path / "node_datasets"
    tasks.mkdir()
    rows = [{"question": "What colour is Kelder blue ware?", "A": "Red", "B": "Deep blue", "C": "Green",
             "D": "White", "answer": "B"},
            {"question": "In what year was Kelderwick founded?", "A": "1905", "B": "1861", "C": "1742",
             "D": "1879", "answer": "C"}]
    (tasks / "mmlubench_knowledge_towns_kelderwick.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tasks / "knowledge_train_msgs.jsonl").write_text('{"messages": []}\n')  # not a task file: ignored
    spec = str(smollm_gguf)
    outcome = run_evaluation(EvalOptions(benchmark="mmlu_branch", model=spec, base_model=spec, tasks_dir=tasks,
                                         output_dir=tmp_path / "results"),
                             Console(file=io.StringIO()), clients={spec: client})
    s = outcome.summary
    task = s["tasks"]["knowledge_towns_kelderwick"]
    assert task["questions"] == 2 and 0.0 <= task["tuned"] <= 1.0 and task["delta"] == 0.0
    assert s["no_change"] == ["knowledge_towns_kelderwick"] and s["settings"]["few_shots"] == 0
    assert (outcome.results_dir / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert s["cache"]["hits"] == 2  # the tuned run (same model here) is answered from the cache
