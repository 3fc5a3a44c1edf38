"""`ilab model train` / `ilab train` / `ilab model test` through the real console script: bad input gives one
clear line and exit 1 (no traceback), and the test command prints both models' answers side by side."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from test_train_support import fact_records, tiny_llama_dir, write_jsonl


def _train(run_ilab, *args: str):
    return run_ilab("model", "train", *args, timeout=120)


def _assert_clean_error(result, *needles: str) -> None:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_empty_data_file(run_ilab, tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    _assert_clean_error(_train(run_ilab, "--data-path", str(empty)), str(empty), "empty")


def test_malformed_line_is_reported_with_its_number(run_ilab, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", fact_records(3))
    lines = path.read_text().splitlines()
    lines[1] = lines[1][:-5]  # cut the JSON short
    path.write_text("\n".join(lines) + "\n")
    _assert_clean_error(_train(run_ilab, "--data-path", str(path)), f"{path}:2:", "not valid JSON")


def test_conversation_without_assistant_turn(run_ilab, tmp_path: Path) -> None:
    records = fact_records(3)
    records[2]["messages"] = records[2]["messages"][:2]
    path = write_jsonl(tmp_path / "noanswer.jsonl", records)
    _assert_clean_error(_train(run_ilab, "--data-path", str(path)), f"{path}:3:", "no assistant turn")


def test_model_directory_without_tokenizer(run_ilab, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    source = tiny_llama_dir()
    for name in ("config.json", "model.safetensors"):
        (model_dir / name).write_bytes((source / name).read_bytes())
    data = write_jsonl(tmp_path / "train.jsonl", fact_records(3))
    _assert_clean_error(_train(run_ilab, "--data-path", str(data), "--model-path", str(model_dir)),
                        str(model_dir), "no tokenizer")


@pytest.mark.parametrize("args, needle", [
    (("--pipeline", "simple", "--lora-rank", "0"), "needs --lora-rank > 0"),
    (("--max-seq-len", "512", "--max-batch-len", "256"), "must be at least --max-seq-len"),
    (("--pipeline", "full", "--lora-quantize", "4"), "--lora-quantize needs LoRA"),
])
def test_bad_option_combinations(run_ilab, tmp_path: Path, args, needle) -> None:
    data = write_jsonl(tmp_path / "train.jsonl", fact_records(3))
    _assert_clean_error(_train(run_ilab, "--data-path", str(data), *args), needle)


def test_a_bad_choice_or_range_is_one_clear_error(run_ilab, tmp_path: Path) -> None:
    preset = tmp_path / "bad.yaml"
    preset.write_text("train:\n  pipeline: bogus\n")
    _assert_clean_error(_train(run_ilab, "--preset", str(preset)), "'pipeline' has the wrong value 'bogus'")
    for args, needle in ((("--held-out-fraction", "1"), "0<=x<1"), (("--lr-scheduler", "step"), "'step'")):
        result = _train(run_ilab, *args)  # the model's ranges and choices are the options' (click: exit 2)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.splitlines()[-1].startswith("Error: Invalid value") and needle in result.stderr


def test_lora_quantize_on_cpu_is_a_clear_error(run_ilab, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "train.jsonl", fact_records(3))
    _assert_clean_error(_train(run_ilab, "--data-path", str(data), "--lora-quantize", "8"), "needs a CUDA GPU")


def test_train_alias_then_model_test_side_by_side(run_ilab, tmp_path: Path) -> None:
    datasets = tmp_path / "datasets" / "run-1"
    write_jsonl(datasets / "skills_train_msgs_2026.jsonl", fact_records(8))
    tests = fact_records(2, start=40)
    write_jsonl(datasets / "test_2026.jsonl", tests)
    run_dir = tmp_path / "ckpts"
    model = str(tiny_llama_dir())
    result = run_ilab("train", "--data-path", str(tmp_path / "datasets"), "--model-path", model,
                      "--ckpt-output-dir", str(run_dir), "--num-epochs", "1", "--effective-batch-size", "4",
                      "--max-seq-len", "128", "--max-batch-len", "256", env={"OMP_NUM_THREADS": "1"},
                      timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "best checkpoint" in result.stdout
    journal = json.loads((run_dir / "run_state.json").read_text())
    assert journal["phases"]["train"]["data"].endswith("skills_train_msgs_2026.jsonl")

    result = run_ilab("test", "--data-path", str(tmp_path / "datasets"), "--base-model", model,
                      "--ckpt-output-dir", str(run_dir), "--max-new-tokens", "4", env={"OMP_NUM_THREADS": "1"},
                      timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    for n, record in enumerate(tests, start=1):
        assert f"[{n}] Q: {record['messages'][1]['content']}" in result.stdout
    assert result.stdout.count("    base    (") == 2 and result.stdout.count("    trained (") == 2
