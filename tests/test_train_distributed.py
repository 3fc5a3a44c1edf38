"""torchrun --nproc-per-node 2 on CPU (gloo, DDP) gives the same losses as one process with the same global batch.

On the embedded SmolLM2-135M (dequantized to float32), 3 optimizer steps of 4 short samples each. Tolerance: 1e-4 absolute on the per-token loss of
each step (the two runs differ only in float summation order: gradients are all-reduced instead of summed
in one process).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from labrador.train.options import TrainOptions
from labrador.train.run import run_training
from test_train_support import fact_records, read_metrics, smollm_hf_dir, write_jsonl

TOLERANCE = 1e-4


def test_torchrun_two_processes_match_single_process(tmp_path: Path) -> None:
    import torch

    data = write_jsonl(tmp_path / "train.jsonl", fact_records(12, seed=2))
    common = dict(model_path=str(smollm_hf_dir()), data_path=str(data), pipeline="full", num_epochs=1,
                  effective_batch_size=4, learning_rate=1e-4, max_seq_len=128, max_batch_len=128,
                  warmup_steps=0, held_out_fraction=0.0, max_steps=3, seed=7)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_training(TrainOptions(ckpt_output_dir=str(tmp_path / "single"), **common))
    finally:
        torch.set_num_threads(threads)

    # the real CLI path: --pipeline accelerated launches torchrun, which runs labrador.train.worker per rank
    ilab = str(Path(sys.executable).with_name("ilab"))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(
        [ilab, "model", "train", "--pipeline", "accelerated", "--nproc-per-node", "2", "--distributed-strategy",
         "ddp", "--data-path", str(data), "--model-path", common["model_path"], "--ckpt-output-dir",
         str(tmp_path / "ddp"), "--num-epochs", "1", "--effective-batch-size", "4", "--learning-rate", "1e-4",
         "--max-seq-len", "128", "--max-batch-len", "128", "--warmup-steps", "0", "--held-out-fraction", "0",
         "--max-steps", "3", "--seed", "7"],
        capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    config = (tmp_path / "ddp" / "config.yaml").read_text()
    assert "world_size: 2" in config

    single = [r["loss"] for r in read_metrics(tmp_path / "single") if "loss" in r]
    ddp = [r["loss"] for r in read_metrics(tmp_path / "ddp") if "loss" in r]
    print(f"single-process losses {single}\ntorchrun x2 losses    {ddp}")
    assert len(single) == len(ddp) == 3
    assert single[-1] < single[0]  # it trained
    for a, b in zip(single, ddp, strict=True):
        assert a == pytest.approx(b, abs=TOLERANCE)
