"""`ilab model evaluate` through the real console script: option errors come before any work."""

from __future__ import annotations

import json
from pathlib import Path


def test_missing_judge_is_a_clear_error_before_any_work(run_ilab, tmp_path: Path, shared_dir: Path) -> None:
    out = tmp_path / "results"
    proc = run_ilab("model", "evaluate", "--benchmark", "mt_bench", "--model", "smollm2-135m-instruct",
                    "--data-dir", str(shared_dir / "data" / "mt_bench"), "--output-dir", str(out), timeout=60)
    assert proc.returncode == 1
    assert "mt_bench benchmark needs a judge model" in proc.stderr and "--judge-model" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()  # nothing was started, so nothing was written


def test_alias_and_dk_bench_without_responses_or_model(run_ilab, tmp_path: Path) -> None:
    data = tmp_path / "dk.jsonl"
    data.write_text(json.dumps({"user_input": "Q?", "reference": "A."}) + "\n")
    proc = run_ilab("evaluate", "--benchmark", "dk_bench", "--judge-model", "smollm2-135m-instruct",
                    "--input-file", str(data), timeout=60)
    assert proc.returncode == 1
    assert f"{data}:1: no 'response' to judge and no --model" in proc.stderr


def test_unknown_benchmark_is_rejected_by_the_option_parser(run_ilab) -> None:
    proc = run_ilab("evaluate", "--benchmark", "hellaswag", "--model", "m", timeout=60)
    assert proc.returncode != 0 and "hellaswag" in proc.stderr and "mmlu_branch" in proc.stderr


def test_dk_bench_cli_with_a_served_judge(run_ilab, tmp_path: Path, smollm_gguf: Path) -> None:
    """The whole command, with the judge behind a real OpenAI-compatible server on 127.0.0.1."""
    from labrador.serve.background import start_server, stop_process

    data = tmp_path / "dk.jsonl"
    data.write_text(json.dumps({"user_input": "What is the capital of France?", "reference": "Paris",
                                "response": "The capital of France is Paris."}) + "\n")
    record = start_server(str(smollm_gguf), port=0, threads=1, max_ctx_size=2048, timeout=120)
    try:
        proc = run_ilab("evaluate", "--benchmark", "dk_bench", "--judge-endpoint", record.url, "--input-file",
                        str(data), "--judge-max-tokens", "16", "--output-dir", str(tmp_path / "out"), timeout=180)
    finally:
        stop_process(record)
    assert proc.returncode == 0, proc.stderr
    (results,) = (tmp_path / "out").iterdir()
    summary = json.loads((results / "summary.json").read_text())
    assert summary["questions"] == 1 and summary["errors"] == 0 and summary["judge"] == record.url
    assert (results / "items.csv").is_file() and "dk_bench" in proc.stdout


KEYFACTS = """\
version: 1
questions:
  - question: What colour is a ripe banana? Answer in one word.
    answer: A ripe banana is yellow.
    key_facts: [yellow]
  - question: How many days are there in a week?
    key_facts: [["7", seven]]
"""


def test_keyfacts_cli_on_the_embedded_model(run_ilab, tmp_path: Path) -> None:
    questions = tmp_path / "questions.yaml"
    questions.write_text(KEYFACTS, encoding="utf-8")
    out = tmp_path / "out"
    proc = run_ilab("model", "evaluate", "--benchmark", "keyfacts", "--questions", str(questions), "--model",
                    "smollm2-135m-instruct", "--threads", "1", "--num-workers", "1", "--max-tokens", "24",
                    "--output-dir", str(out), timeout=300)
    assert proc.returncode == 0, proc.stderr
    (results,) = out.iterdir()
    assert results.name.startswith("keyfacts-")
    summary = json.loads((results / "summary.json").read_text())
    assert summary["benchmark"] == "keyfacts" and summary["total"] == 2 and 0 <= summary["accuracy"] <= 1
    items = [json.loads(line) for line in (results / "items.jsonl").read_text().splitlines()]
    assert [i["question"] for i in items] == ["What colour is a ripe banana? Answer in one word.",
                                              "How many days are there in a week?"]
    assert all(i["answer"] and i["score"] in (0.0, 1.0) for i in items)
    assert "keyfacts: smollm2-135m-instruct" in proc.stdout and f"correct {summary['correct']}/2" in proc.stdout


def test_keyfacts_cli_bad_question_files(run_ilab, tmp_path: Path) -> None:
    malformed = tmp_path / "malformed.yaml"
    malformed.write_text("questions:\n  - {question: What?, key_facts: [a]}\n", encoding="utf-8")
    no_facts = tmp_path / "no_facts.yaml"
    no_facts.write_text("questions:\n  - question: What is it?\n", encoding="utf-8")
    cases = [(tmp_path / "missing.yaml", "question file not found"), (malformed, "not valid YAML (line 2"),
             (no_facts, "question 1: 'key_facts' must be a non-empty list")]
    for path, message in cases:
        proc = run_ilab("model", "evaluate", "--benchmark", "keyfacts", "--questions", str(path), "--model",
                        "smollm2-135m-instruct", "--output-dir", str(tmp_path / "out"), timeout=60)
        assert proc.returncode == 1, proc.stderr
        assert f"{path}: {message}" in proc.stderr and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1  # one paragraph, nothing else
    assert not (tmp_path / "out").exists()
