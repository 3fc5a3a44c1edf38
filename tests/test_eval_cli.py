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
