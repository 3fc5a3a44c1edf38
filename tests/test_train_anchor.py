"""Anchor rows: KL to the phase's starting model instead of cross-entropy on their text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labrador.train import batching
from labrador.train.data import process_file, process_files
from labrador.train.options import TrainOptions
from labrador.train.run import run_training
from test_train_support import fact_records, tiny_llama_dir, write_jsonl


@pytest.fixture(autouse=True)
def one_thread(torch_one_thread: None) -> None:
    """Every test here runs with one torch thread (conftest.torch_one_thread)."""


@pytest.fixture()
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def _records(anchored: list[bool]) -> list[dict]:
    records = fact_records(len(anchored), seed=5)
    for record, flag in zip(records, anchored, strict=True):
        if flag:
            record["anchor"] = True
    return records


def _tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_llama_dir()))


def test_anchor_flags_survive_processing_cache_concatenation_and_subsets(cache_home: Path) -> None:
    tokenizer = _tokenizer()
    first = write_jsonl(cache_home / "a.jsonl", _records([False, True, False, True]))
    plain = write_jsonl(cache_home / "b.jsonl", _records([False, False]))
    fresh = process_file(first, tokenizer, 256)
    cached = process_file(first, tokenizer, 256)
    assert not fresh.from_cache and cached.from_cache
    assert fresh.anchors.tolist() == cached.anchors.tolist() == [False, True, False, True]
    assert process_file(plain, tokenizer, 256).anchors is None  # no anchor rows: nothing to carry
    both = process_files([plain, first], tokenizer, 256)
    assert both.anchors.tolist() == [False, False, False, True, False, True]
    assert both.subset([5, 0, 3]).anchors.tolist() == [True, False, True]


def test_kl_against_the_model_itself_leaves_only_the_plain_rows_cross_entropy(cache_home: Path) -> None:
    import torch
    import torch.nn.functional as F
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_llama_dir()), dtype=torch.float32).eval()
    data = process_file(write_jsonl(cache_home / "d.jsonl", _records([True, False, True, False])), _tokenizer(), 256)
    batch = batching.collate(data, [0, 1, 2, 3])
    assert batch.anchor is not None and batch.anchor_batch.num_samples == 2
    assert int(batch.anchor.sum()) == len(batch.anchor_batch.targets)  # the same positions, in the same order
    with torch.no_grad():
        mixed = float(batching.summed_loss(model, batch, lambda b: batching.kept_logits(model, b)))
        logits = batching.kept_logits(model, batch)
        plain = ~batch.anchor
        expected = float(F.cross_entropy(logits[plain], batch.targets[plain], reduction="sum"))
        everything = float(batching.summed_loss(model, batch))  # no reference: cross-entropy on every row
    assert mixed == pytest.approx(expected, rel=1e-5)
    assert everything > expected + 1.0


def test_anchor_weight_scales_the_anchor_rows_kl_only(cache_home: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_llama_dir()), dtype=torch.float32).eval()
    data = process_file(write_jsonl(cache_home / "w.jsonl", _records([True, False, True, False])), _tokenizer(), 256)
    batch = batching.collate(data, [0, 1, 2, 3])

    def flatter(b: batching.MicroBatch) -> torch.Tensor:  # a reference that differs from the model
        return batching.kept_logits(model, b) * 0.5

    with torch.no_grad():
        plain = float(batching.summed_loss(model, batch, lambda b: batching.kept_logits(model, b)))
        once = float(batching.summed_loss(model, batch, flatter))
        thrice = float(batching.summed_loss(model, batch, flatter, anchor_weight=3.0))
    kl = once - plain
    assert kl > 0.1
    assert thrice == pytest.approx(plain + 3 * kl, rel=1e-4)


def _train(tmp: Path, name: str, records: list[dict], anchor_kl: bool = True, pipeline: str = "simple",
           lr: float = 5e-2) -> str:
    data = write_jsonl(tmp / f"{name}.jsonl", records)
    journal = run_training(TrainOptions(
        model_path=str(tiny_llama_dir()), data_path=str(data), ckpt_output_dir=str(tmp / name), pipeline=pipeline,
        num_epochs=3, learning_rate=lr, effective_batch_size=2, max_seq_len=256, max_batch_len=512,
        warmup_steps=0, lora_rank=4, lora_alpha=8, lora_dropout=0.0, held_out_fraction=0.0, anchor_kl=anchor_kl,
        lora_target_modules=["q_proj", "v_proj", "gate_proj", "down_proj"]))
    return journal["phases"]["train"]["best"]["path"]


def _kl_per_token(checkpoint: str, data_file: Path) -> float:
    """Mean KL(base || checkpoint) over the file's answer tokens."""
    import torch
    import torch.nn.functional as F
    from transformers import AutoModelForCausalLM

    def load(path: str):
        return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()

    data = process_file(data_file, _tokenizer(), 256)
    batch = batching.collate(data, list(range(len(data))))
    with torch.no_grad():
        base = F.log_softmax(batching.kept_logits(load(str(tiny_llama_dir())), batch), -1)
        tuned = F.log_softmax(batching.kept_logits(load(checkpoint), batch), -1)
    return float(F.kl_div(tuned, base, log_target=True, reduction="sum")) / len(batch.targets)


def test_lora_on_anchor_rows_keeps_the_starting_distribution_and_text_training_does_not(cache_home: Path) -> None:
    """At a learning rate that moves the model a lot, a phase of anchor rows ends where it started (per-token
    KL to the base near zero: the loss is its own restoring force), while the same rows trained as text (what
    --no-anchor-kl does) pull the model far from its starting distribution."""
    records = _records([True] * 6)
    anchored = _train(cache_home, "anchored", records)
    as_text = _train(cache_home, "as_text", records, anchor_kl=False)
    rows = write_jsonl(cache_home / "rows.jsonl", records)
    kept, moved = _kl_per_token(anchored, rows), _kl_per_token(as_text, rows)
    assert kept < 0.005
    assert moved > 5 * kept  # measured: 0.0016 against 0.023
    metrics = [json.loads(line) for line in (cache_home / "anchored" / "metrics.jsonl").read_text().splitlines()]
    assert max(abs(m["loss"]) for m in metrics if "loss" in m) < 0.05  # KL per token; text rows: ~10.6


def test_full_fine_tuning_anchors_to_a_frozen_copy_of_the_starting_model(cache_home: Path) -> None:
    """Without LoRA the reference is a frozen second copy: anchor rows alone keep the model where it started,
    while the same rows trained as text move it (the same check as for LoRA)."""
    records = _records([True] * 6)
    rows = write_jsonl(cache_home / "rows.jsonl", records)
    kept = _kl_per_token(_train(cache_home, "full_anchored", records, pipeline="full", lr=2e-3), rows)
    moved = _kl_per_token(_train(cache_home, "full_text", records, anchor_kl=False, pipeline="full", lr=2e-3), rows)
    assert kept < 0.005
    assert moved > 5 * kept  # measured: 0.0005 against 0.0105


def test_anchor_field_is_recorded_in_the_run_config(cache_home: Path) -> None:
    checkpoint = _train(cache_home, "mixed", _records([True, False, True, False]))
    config = (Path(checkpoint).parents[1] / "config.yaml").read_text()
    assert "anchor_kl: true" in config
    assert json.loads((Path(checkpoint).parents[1] / "run_state.json").read_text())["phases"]["train"]["status"] == "done"
