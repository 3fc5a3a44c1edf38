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
def one_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small tensors: threads only add overhead, and runs stay reproducible
    yield
    torch.set_num_threads(threads)


def _options(tmp_path: Path, run: str, **extra) -> TrainOptions:
    data = write_jsonl(tmp_path / "train.jsonl", fact_records(20, seed=1))
    base = dict(model_path=str(tiny_llama_dir()), data_path=str(data), ckpt_output_dir=str(tmp_path / run),
                pipeline="simple", lora_rank=4, lora_alpha=8, lora_dropout=0.2, num_epochs=2,
                effective_batch_size=3, learning_rate=5e-3, max_seq_len=128, max_batch_len=128,
                warmup_steps=2, held_out_fraction=0.2, save_samples=8)
    base.update(extra)
    return TrainOptions(**base)


def test_resume_after_stop_matches_uninterrupted_run(tmp_path: Path) -> None:
    full = run_training(_options(tmp_path, "full"))
    assert full["phases"]["train"]["status"] == "done"

    stopped = run_training(_options(tmp_path, "resumed", max_steps=4))  # 6 steps per epoch: stops mid-epoch 1
    assert stopped["phases"]["train"]["status"] == "stopped"
    resumed = run_training(_options(tmp_path, "resumed", resume=True))
    assert resumed["phases"]["train"]["status"] == "done"

    def losses(run: str) -> dict[int, float]:
        return {r["step"]: r["loss"] for r in read_metrics(tmp_path / run) if "loss" in r}

    expected, got = losses("full"), losses("resumed")
    assert sorted(got) == sorted(expected) == list(range(1, 13))
    for step in expected:
        assert got[step] == pytest.approx(expected[step], abs=1e-6), step
    # the held-out scores of the checkpoints (every 8 samples and at epoch ends) match too
    scores = [(c["samples"], round(c["held_out_loss"], 5)) for c in full["phases"]["train"]["checkpoints"]]
    assert scores == [(c["samples"], round(c["held_out_loss"], 5))
                      for c in resumed["phases"]["train"]["checkpoints"]]
    assert len(scores) >= 3


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
