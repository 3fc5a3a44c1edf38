"""Padding-free packing: a packed row gives the same per-token loss as the samples run one by one."""

from __future__ import annotations

import numpy as np
import pytest

from labrador.train import attention, batching
from labrador.train.data import Conversation, ProcessedData, tokenize_conversation
from test_train_support import fact_records, smollm_hf_dir, tiny_llama_dir


def _processed(tokenizer, records) -> ProcessedData:
    ids, labels, offsets = [], [], [0]
    for i, record in enumerate(records):
        a, b = tokenize_conversation(tokenizer, Conversation(record["messages"], False, i + 1))
        ids += a
        labels += b
        offsets.append(len(ids))
    return ProcessedData(np.array(ids, np.int32), np.array(labels, np.int32), np.array(offsets), "test")


@pytest.fixture(autouse=True)
def one_thread(torch_one_thread: None) -> None:
    """Every test here runs with one torch thread (conftest.torch_one_thread)."""


@pytest.fixture(scope="module")
def smollm():
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = smollm_hf_dir()
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32, attn_implementation="sdpa")
    return model.eval(), AutoTokenizer.from_pretrained(str(path))


def test_pack_respects_max_batch_len_and_keeps_every_sample() -> None:
    lengths = np.array([50, 10, 30, 70, 20, 90, 5])
    bins = batching.pack(list(range(7)), lengths, 100)
    assert sorted(i for b in bins for i in b) == list(range(7))
    assert all(lengths[b].sum() <= 100 for b in bins)
    assert len(bins) == 3  # 275 tokens need at least 3 rows of 100


def test_split_for_rank_partitions_a_batch() -> None:
    lengths = np.array([5, 9, 3, 7, 1])
    shares = [batching.split_for_rank([0, 1, 2, 3, 4], lengths, 2, r) for r in (0, 1)]
    assert sorted(shares[0] + shares[1]) == [0, 1, 2, 3, 4]
    assert abs(lengths[shares[0]].sum() - lengths[shares[1]].sum()) <= 3


def test_packed_loss_equals_one_by_one_on_smollm2(smollm) -> None:
    import torch
    import torch.nn.functional as F

    model, tokenizer = smollm
    records = fact_records(4, seed=3)
    records[1]["messages"][2]["content"] += " She has done so for many years, like her mother before her."
    data = _processed(tokenizer, records)
    with torch.no_grad():
        packed = batching.collate(data, [0, 1, 2, 3])
        assert packed.position_ids[0].tolist().count(0) == 4  # positions restart per sample
        packed_loss = float(batching.summed_loss(model, packed)) / len(packed.targets)
        model.config._attn_implementation = attention.register()  # what the trainer uses without flash-attn
        varlen_loss = float(batching.summed_loss(model, packed)) / len(packed.targets)
        model.config._attn_implementation = "sdpa"
        total, tokens = 0.0, 0
        for i in range(4):  # the plain unpacked path: full logits, HF-style shift, mean over loss tokens
            ids, labels = data.sample(i)
            logits = model(input_ids=torch.tensor(ids[None], dtype=torch.long)).logits[0, :-1]
            target = torch.tensor(labels[1:], dtype=torch.long)
            total += float(F.cross_entropy(logits, target, ignore_index=-100, reduction="sum"))
            tokens += int((target != -100).sum())
    assert tokens == len(packed.targets) == int(data.loss_tokens().sum())
    assert abs(packed_loss - total / tokens) < 1e-4, (packed_loss, total / tokens)
    assert abs(varlen_loss - total / tokens) < 1e-4, (varlen_loss, total / tokens)
    assert 0.5 < packed_loss < 8  # a real language model on real text, not a degenerate case


def test_explicit_block_diagonal_mask_matches_position_id_packing() -> None:
    """The fallback for transformers without packed-sequence detection gives the same loss."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = tiny_llama_dir()
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32, attn_implementation="sdpa").eval()
    data = _processed(AutoTokenizer.from_pretrained(str(path)), fact_records(3, seed=5))
    with torch.no_grad():
        batch = batching.collate(data, [0, 1, 2])
        implicit = float(batching.summed_loss(model, batch))
        batch.attention_mask = batching.block_diagonal_mask([int(n) for n in data.lengths()])
        explicit = float(batching.summed_loss(model, batch))
    assert abs(implicit - explicit) / len(batch.targets) < 1e-5
