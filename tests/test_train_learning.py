"""Training works: the embedded SmolLM2 (dequantized to float32) learns the sample taxonomy's generated data in
a few dozen steps (held-out loss falls), and the LAB multi-phase strategy chains its phases and resumes between them."""

from __future__ import annotations

from pathlib import Path

import pytest

from labrador.train.options import TrainOptions
from labrador.train.run import run_training
from test_train_support import fact_records, read_metrics, smollm_hf_dir, tiny_llama_dir, write_jsonl


@pytest.fixture(autouse=True)
def one_thread(torch_one_thread: None) -> None:
    """Every test here runs with one torch thread (conftest.torch_one_thread)."""


def test_smollm2_lora_lowers_held_out_loss(tmp_path: Path) -> None:
    """Real generated data: `ilab data generate` on the bundled sample taxonomy with SmolLM2 as teacher
    (tests/data/sample_taxonomy_generated.jsonl, recorded from a run: 48 rows of the three leaves). Rows over
    272 tokens (the longest knowledge chunks) are dropped and counted, to keep the test at a few dozen steps."""
    data = Path(__file__).parent / "data" / "sample_taxonomy_generated.jsonl"
    journal = run_training(TrainOptions(
        model_path=str(smollm_hf_dir()), data_path=str(data), ckpt_output_dir=str(tmp_path / "run"),
        pipeline="simple", lora_rank=8, lora_alpha=16, lora_dropout=0.0, num_epochs=1, effective_batch_size=2,
        learning_rate=2e-3, warmup_steps=2, max_seq_len=272, max_batch_len=544, held_out_fraction=0.2))
    phase = journal["phases"]["train"]
    steps = [r for r in read_metrics(tmp_path / "run") if "loss" in r]
    before, after = phase["initial_held_out_loss"], phase["best"]["held_out_loss"]
    print(f"held-out loss {before:.4f} -> {after:.4f} after {len(steps)} steps; journal {phase}")
    assert len(steps) >= 10
    assert after < 0.9 * before, (before, after)
    assert steps[-1]["loss"] < steps[0]["loss"]


def test_lab_multiphase_chains_phases_and_resumes(tmp_path: Path) -> None:
    run = tmp_path / "datasets" / "run-1"
    write_jsonl(run / "knowledge_train_msgs_1.jsonl", fact_records(8, seed=1))
    write_jsonl(run / "skills_train_msgs_1.jsonl", fact_records(8, seed=2, start=30))

    def options(**extra) -> TrainOptions:
        return TrainOptions(model_path=str(tiny_llama_dir()), data_path=str(tmp_path / "datasets"),
                            ckpt_output_dir=str(tmp_path / "ckpt"), strategy="lab-multiphase", pipeline="full",
                            phase1_num_epochs=2, phase1_learning_rate=1e-3, phase2_num_epochs=1,
                            phase2_learning_rate=5e-4, effective_batch_size=3, max_seq_len=128,
                            max_batch_len=256, held_out_fraction=0.25, **extra)

    stopped = run_training(options(max_steps=5))  # phase 1: 6 samples / 3 x 2 epochs = 4 steps
    assert stopped["phases"]["phase1"]["status"] == "done"
    assert stopped["phases"]["phase2"]["status"] == "stopped"
    journal = run_training(options(resume=True))
    phase1, phase2 = journal["phases"]["phase1"], journal["phases"]["phase2"]
    assert phase2["status"] == "done"
    assert phase2["start_from"] == phase1["best"]["path"]
    assert phase1["data"].endswith("knowledge_train_msgs_1.jsonl")
    assert phase2["data"].endswith("skills_train_msgs_1.jsonl")
    records = [r for r in read_metrics(tmp_path / "ckpt") if "loss" in r]
    assert [r["step"] for r in records if r["phase"] == "phase1"] == [1, 2, 3, 4]  # not re-run on resume
    assert [r["step"] for r in records if r["phase"] == "phase2"] == [1, 2]
    assert Path(phase2["best"]["path"]).is_relative_to(tmp_path / "ckpt" / "phase2")
