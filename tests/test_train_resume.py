"""Resume: a run stopped mid-epoch and resumed matches an uninterrupted run step by step (CPU, deterministic).

Uses a tiny random Llama with SmolLM2's tokenizer (2 layers, width 64) and LoRA with dropout, so the restored
RNG state matters; the real model would only make the test slower, not stronger. Real `ilab model train`
processes are SIGKILLed between steps and inside each checkpoint write (the test-only kill points of
`labrador.train.checkpoint.kill_point`) and resumed through the CLI; metrics.jsonl must then hold every step
exactly once, with the uninterrupted run's losses.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labrador.train.metrics import read_metrics as read_lenient
from labrador.train.options import TrainOptions
from labrador.train.run import run_training
from test_train_support import fact_records, read_metrics, tiny_llama_dir, write_jsonl


@pytest.fixture(autouse=True)
def one_thread(torch_one_thread: None) -> None:
    """Every test here runs with one torch thread (conftest.torch_one_thread)."""


def _options(tmp_path: Path, run: str, **extra) -> TrainOptions:
    data = write_jsonl(tmp_path / "train.jsonl", fact_records(20, seed=1))
    base = dict(model_path=str(tiny_llama_dir()), data_path=str(data), ckpt_output_dir=str(tmp_path / run),
                pipeline="simple", lora_rank=4, lora_alpha=8, lora_dropout=0.2, num_epochs=2,
                effective_batch_size=3, learning_rate=5e-3, max_seq_len=128, max_batch_len=128,
                warmup_steps=2, held_out_fraction=0.2, save_samples=3)
    base.update(extra)
    return TrainOptions(**base)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One uninterrupted run (checkpoint after every step), shared by the two resume tests."""
    root = tmp_path_factory.mktemp("reference")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(root / "cache"))
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            journal = run_training(_options(root, "reference"))
        finally:
            torch.set_num_threads(threads)
    assert journal["phases"]["train"]["status"] == "done"
    return root, journal


def _losses(run_dir: Path) -> dict[int, float]:
    """Step -> loss, after checking that metrics.jsonl holds every step 1..N exactly once, in order (a dict
    alone would hide a step logged twice), and each checkpoint's held-out score once."""
    records = read_metrics(run_dir)  # strict: every line must be a whole JSON record
    steps = [r["step"] for r in records if "loss" in r]
    assert steps == list(range(1, len(steps) + 1)), steps
    scored = [r["step"] for r in records if "held_out_loss" in r]
    assert scored == sorted(set(scored)), scored
    return {r["step"]: r["loss"] for r in records if "loss" in r}


def test_resume_after_stop_matches_uninterrupted_run(tmp_path: Path, reference) -> None:
    root, full = reference
    stopped = run_training(_options(tmp_path, "resumed", max_steps=4))  # 6 steps per epoch: stops mid-epoch 1
    assert stopped["phases"]["train"]["status"] == "stopped"
    resumed = run_training(_options(tmp_path, "resumed", resume=True))
    assert resumed["phases"]["train"]["status"] == "done"

    expected, got = _losses(root / "reference"), _losses(tmp_path / "resumed")
    assert sorted(got) == sorted(expected) == list(range(1, 13))
    for step in expected:
        assert got[step] == pytest.approx(expected[step], abs=1e-6), step
    # the held-out scores of the checkpoints (every 3 samples and at epoch ends) match too
    scores = [(c["samples"], round(c["held_out_loss"], 5)) for c in full["phases"]["train"]["checkpoints"]]
    assert scores == [(c["samples"], round(c["held_out_loss"], 5))
                      for c in resumed["phases"]["train"]["checkpoints"]]
    assert len(scores) >= 10


def test_run_directory_records_everything(tmp_path: Path) -> None:
    import yaml

    journal = run_training(_options(tmp_path, "run", num_epochs=1, save_samples=0))
    run = tmp_path / "run"
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["options"]["lora_rank"] == 4 and config["options"]["effective_batch_size"] == 3
    steps = [r for r in read_metrics(run) if "loss" in r]
    assert set(steps[0]) >= {"step", "loss", "lr", "tokens_per_s", "samples_per_s", "memory_mb"}
    assert (run / "loss.png").read_bytes()[:4] == b"\x89PNG"
    best = Path(journal["phases"]["train"]["best"]["path"])
    assert (best / "model.safetensors").is_file() and (best / "tokenizer.json").is_file()
    assert not any(best.glob("adapter_*"))  # LoRA merged: a standalone checkpoint

    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(str(best))  # loads as a plain model

    with pytest.raises(Exception, match="already holds a training run"):
        run_training(_options(tmp_path, "run", num_epochs=1))


def _train_args(opts: TrainOptions) -> list[str]:
    return ["--data-path", opts.data_path, "--model-path", opts.model_path, "--ckpt-output-dir",
            opts.ckpt_output_dir, "--pipeline", "simple", "--lora-rank", "4", "--lora-alpha", "8", "--lora-dropout",
            "0.2", "--num-epochs", "2", "--effective-batch-size", "3", "--learning-rate", "5e-3", "--max-seq-len",
            "128", "--max-batch-len", "128", "--warmup-steps", "2", "--held-out-fraction", "0.2",
            "--save-samples", "3"]


def _ilab(args: list[str], kill_at: str | None = None) -> subprocess.Popen:
    """`python -m labrador.cli.main model train ...` in a real process; `kill_at` sets the test-only kill point."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if kill_at:
        env["LABRADOR_TEST_SIGKILL_AT"] = kill_at
    return subprocess.Popen([sys.executable, "-m", "labrador.cli.main", "model", "train", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def _resume_to_the_end(opts: TrainOptions, expected: dict[int, float], reference_journal: dict) -> None:
    """`ilab model train --resume` through the CLI finishes the run; its steps and losses are the reference's."""
    process = _ilab(["--resume", "--ckpt-output-dir", opts.ckpt_output_dir])
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    run = Path(opts.ckpt_output_dir)
    journal = json.loads((run / "run_state.json").read_text())
    assert journal["phases"]["train"]["status"] == "done"
    got = _losses(run)
    assert sorted(got) == sorted(expected) == list(range(1, 13))
    for step in expected:
        assert got[step] == pytest.approx(expected[step], abs=1e-6), step
    def scores(record: dict) -> list[tuple[int, float]]:
        return [(c["samples"], round(c["held_out_loss"], 5)) for c in record["phases"]["train"]["checkpoints"]]

    assert scores(journal) == scores(reference_journal)
    assert (run / "loss.png").read_bytes()[:4] == b"\x89PNG"


def test_sigkill_between_steps_and_a_torn_metrics_line_resume_through_the_cli(tmp_path: Path, reference) -> None:
    """A real `ilab train` process killed with SIGKILL mid-epoch resumes from its last saved state, even when
    the kill left half a line at the end of metrics.jsonl."""
    root, full = reference
    opts = _options(tmp_path, "killed")  # a resumable state after every step (--save-samples 3)
    process = subprocess.Popen([str(Path(sys.executable).with_name("ilab")), "train", *_train_args(opts)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=dict(os.environ, OMP_NUM_THREADS="1"))
    metrics = Path(opts.ckpt_output_dir) / "metrics.jsonl"
    deadline = time.monotonic() + 240
    while not any(r.get("step", 0) >= 3 and "loss" in r for r in read_lenient(metrics)):
        assert process.poll() is None, "training ended before it could be killed"
        assert time.monotonic() < deadline, "training made no progress"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    # what a kill inside `write` leaves: a record cut short, without its newline
    with metrics.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"phase": "train", "step": 99, "loss": 1.0})[:17])
    _resume_to_the_end(opts, _losses(root / "reference"), full)


@pytest.mark.slow
def test_sigkill_inside_every_checkpoint_write_then_resume_through_the_cli(tmp_path: Path, reference) -> None:
    """Killed inside the first resume-state write (nothing to resume: the run starts over), between the two
    renames of a later one (only full_state.old is complete), and inside an HF checkpoint write; each time
    `ilab model train --resume` picks up, and the finished run matches the uninterrupted one."""
    root, full = reference
    opts = _options(tmp_path, "killed")
    run = Path(opts.ckpt_output_dir)

    def killed(args: list[str], point: str) -> None:
        process = _ilab(args, kill_at=point)
        output, _ = process.communicate(timeout=300)
        assert process.returncode == -signal.SIGKILL, f"not killed at {point}: {output}"

    killed(_train_args(opts), "state-half-written:1")  # step 1's state: model and optimizer written, no more
    assert (run / "full_state.tmp" / "optimizer.pt").is_file()
    assert not (run / "full_state.tmp" / "progress.json").exists() and not (run / "full_state").exists()

    resume = ["--resume", "--ckpt-output-dir", opts.ckpt_output_dir]
    killed(resume, "state-swapping:3")  # steps 1-3 again; step 3's state is complete but not yet in place
    assert not (run / "full_state").exists() and (run / "full_state.old" / "progress.json").is_file()
    assert json.loads((run / "full_state.old" / "progress.json").read_text())["global_step"] == 2

    killed(resume, "state-swapping:1")  # from step 2: step 3's state again; step 2's must survive the swap
    assert not (run / "full_state").exists()
    assert json.loads((run / "full_state.old" / "progress.json").read_text())["global_step"] == 2

    killed(resume, "hf-weights-written:2")  # from step 2: step 4's HF checkpoint has weights, no tokenizer
    torn = list(run.glob("hf_format/*.tmp"))
    assert len(torn) == 1 and (torn[0] / "model.safetensors").is_file(), torn
    assert not (torn[0] / "tokenizer.json").exists()

    _resume_to_the_end(opts, _losses(root / "reference"), full)
    assert not list(run.glob("hf_format/*.tmp"))  # the HF checkpoint cut short was written again
