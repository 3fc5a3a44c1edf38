"""Resume: a run stopped mid-epoch and resumed matches an uninterrupted run step by step (CPU, deterministic).

Uses a tiny random Llama with SmolLM2's tokenizer (2 layers, width 64) and LoRA with dropout, so the restored
RNG state matters; the real model would only make the test slower, not stronger.
"""

from __future__ import annotations

from pathlib import Path

import pytest

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
    return {r["step"]: r["loss"] for r in read_metrics(run_dir) if "loss" in r}


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


def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path: Path, reference) -> None:
    """A real `ilab train` process killed with SIGKILL mid-epoch resumes from its last saved state."""
    import os
    import signal
    import subprocess
    import sys
    import time

    root, _ = reference
    expected = _losses(root / "reference")
    opts = _options(tmp_path, "killed")  # a resumable state after every step (--save-samples 3)

    args = [str(Path(sys.executable).with_name("ilab")), "train", "--data-path", opts.data_path, "--model-path",
            opts.model_path, "--ckpt-output-dir", opts.ckpt_output_dir, "--pipeline", "simple", "--lora-rank", "4",
            "--lora-alpha", "8", "--lora-dropout", "0.2", "--num-epochs", "2", "--effective-batch-size", "3",
            "--learning-rate", "5e-3", "--max-seq-len", "128", "--max-batch-len", "128", "--warmup-steps", "2",
            "--held-out-fraction", "0.2", "--save-samples", "3"]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=dict(os.environ, OMP_NUM_THREADS="1"))
    metrics = Path(opts.ckpt_output_dir) / "metrics.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if metrics.is_file() and any(r.get("step", 0) >= 3 and "loss" in r for r in read_metrics(metrics.parent)):
            break
        assert process.poll() is None, "training ended before it could be killed"
        time.sleep(0.05)
    assert process.poll() is None
    process.send_signal(signal.SIGKILL)
    process.wait()

    resumed = run_training(_options(tmp_path, "killed", resume=True))
    assert resumed["phases"]["train"]["status"] == "done"
    got = _losses(tmp_path / "killed")
    assert sorted(got) == sorted(expected)  # no duplicated or missing steps in metrics.jsonl
    for step in expected:
        assert got[step] == pytest.approx(expected[step], abs=1e-6), step
