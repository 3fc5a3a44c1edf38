"""Padding-free batching: global batches of exactly N samples, split over ranks, packed into micro-batches.

A micro-batch is one row: samples concatenated, position ids restarting at 0 for each sample. Attention stays
inside each sample: transformers (>= 4.53) derives a block-diagonal causal mask from restarting position ids
for sdpa/eager, and flash-attention uses them as varlen boundaries; for older versions we pass an explicit 4D
block-diagonal mask. Targets are shifted per sample, so no token learns to predict the next sample's first token.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from labrador.train.data import IGNORE, ProcessedData


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The shuffled sample order of one epoch: a pure function of (seed, epoch), so resume can replay it."""
    return np.random.RandomState((seed * 1_000_003 + epoch) % (2**32)).permutation(n).tolist()


def global_batches(order: list[int], batch_size: int) -> list[list[int]]:
    """Consecutive groups of `batch_size` samples; the last one may be smaller (every sample is used)."""
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def split_for_rank(batch: list[int], lengths: np.ndarray, world_size: int, rank: int) -> list[int]:
    """This rank's share of a global batch: longest first onto the least-loaded rank (balanced tokens)."""
    if world_size == 1:
        return list(batch)
    loads = [0] * world_size
    shares: list[list[int]] = [[] for _ in range(world_size)]
    for index in sorted(batch, key=lambda i: (-int(lengths[i]), i)):
        target = min(range(world_size), key=lambda r: (loads[r], len(shares[r]), r))
        shares[target].append(index)
        loads[target] += int(lengths[index])
    return shares[rank]


def pack(indices: list[int], lengths: np.ndarray, max_batch_len: int) -> list[list[int]]:
    """First-fit decreasing: micro-batches of at most `max_batch_len` tokens (a longer sample rides alone)."""
    bins: list[list[int]] = []
    room: list[int] = []
    for index in sorted(indices, key=lambda i: (-int(lengths[i]), i)):
        size = int(lengths[index])
        for b, free in enumerate(room):
            if size <= free:
                bins[b].append(index)
                room[b] -= size
                break
        else:
            bins.append([index])
            room.append(max_batch_len - size)
    return bins


@dataclass
class MicroBatch:
    input_ids: Any  # LongTensor [1, T]
    position_ids: Any  # LongTensor [1, T]
    targets: Any  # LongTensor [K]: the target token of each kept position
    keep: Any  # LongTensor [K]: positions whose logits are computed (those with a target)
    attention_mask: Any | None  # 4D block-diagonal mask, only for transformers without packed-sequence support
    num_samples: int
    anchor: Any | None = None  # BoolTensor [K]: kept positions that belong to anchor samples (None: none do)
    anchor_batch: MicroBatch | None = None  # the anchor samples alone, in order, for the reference model


def _needs_explicit_mask() -> bool:
    import transformers.masking_utils as masking

    return not hasattr(masking, "find_packed_sequence_indices")


def collate(data: ProcessedData, indices: list[int], device: Any = "cpu") -> MicroBatch:
    """One packed row. The target of position t is label[t+1] of the same sample (IGNORE at its end).
    When some samples are anchors, the batch also carries them alone (`anchor_batch`): the reference model
    needs logits for those positions only, and a packed row of them keeps their kept positions in order."""
    import torch

    ids_parts, pos_parts, target_parts = [], [], []
    for i in indices:
        ids, labels = data.sample(i)
        ids_parts.append(ids)
        pos_parts.append(np.arange(len(ids)))
        target_parts.append(np.concatenate([labels[1:], [IGNORE]]))
    ids = np.concatenate(ids_parts).astype(np.int64)
    targets = np.concatenate(target_parts).astype(np.int64)
    keep = np.nonzero(targets != IGNORE)[0]
    anchor = anchor_batch = None
    flags = [data.is_anchor(i) for i in indices]
    if any(flags):
        per_position = np.concatenate([np.full(len(p), f) for p, f in zip(ids_parts, flags, strict=True)])
        anchor = torch.from_numpy(per_position[keep]).to(device)
        # the anchor samples alone, none flagged (so collating them does not recurse)
        anchor_batch = collate(replace(data, anchors=None), [i for i, f in zip(indices, flags, strict=True) if f],
                               device)
    return MicroBatch(
        input_ids=torch.from_numpy(ids).unsqueeze(0).to(device),
        position_ids=torch.from_numpy(np.concatenate(pos_parts).astype(np.int64)).unsqueeze(0).to(device),
        targets=torch.from_numpy(targets[keep]).to(device),
        keep=torch.from_numpy(keep.astype(np.int64)).to(device),
        attention_mask=block_diagonal_mask([len(p) for p in ids_parts]).to(device) if _needs_explicit_mask() else None,
        num_samples=len(indices),
        anchor=anchor,
        anchor_batch=anchor_batch,
    )


def block_diagonal_mask(lengths: list[int]) -> Any:
    """Additive float mask [1, 1, T, T]: causal within each sample, -inf across samples."""
    import torch

    total = sum(lengths)
    segment = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
    allowed = (segment[:, None] == segment[None, :]) & torch.ones(total, total, dtype=torch.bool).tril()
    mask = torch.zeros(total, total)
    mask.masked_fill_(~allowed, torch.finfo(torch.float32).min)
    return mask[None, None]


def kept_logits(model: Any, batch: MicroBatch) -> Any:
    """[K, vocab] float32 logits at the batch's kept positions only (saves the vocab projection and softmax on
    prompt tokens, a large share of a small model's compute)."""
    kwargs: dict[str, Any] = {"input_ids": batch.input_ids, "position_ids": batch.position_ids,
                              "logits_to_keep": batch.keep, "use_cache": False}
    if batch.attention_mask is not None:
        kwargs["attention_mask"] = batch.attention_mask
    logits = model(**kwargs).logits
    return logits.reshape(-1, logits.shape[-1]).float()


def summed_loss(model: Any, batch: MicroBatch, reference: Any = None, anchor_weight: float = 1.0) -> Any:
    """Summed per-token loss over the batch's loss tokens: cross-entropy against the targets, except on anchor
    samples when a `reference` (a callable giving the starting model's logits for a MicroBatch) is given,
    where it is KL(reference || model) summed over the vocabulary, times `anchor_weight`. Reproducing the
    starting model's greedy text only pins its top token; the whole distribution pins far more of what the
    model knows (measured on the demo: general check 16/24 with cross-entropy on the replay rows, 22/24 with
    KL; docs/training.md)."""
    import torch
    import torch.nn.functional as F

    logits = kept_logits(model, batch)
    if reference is None or batch.anchor is None:
        return F.cross_entropy(logits, batch.targets, reduction="sum")
    plain = ~batch.anchor
    loss = F.cross_entropy(logits[plain], batch.targets[plain], reduction="sum")
    with torch.no_grad():
        ref_logp = F.log_softmax(reference(batch.anchor_batch), dim=-1)
    kl = F.kl_div(F.log_softmax(logits[batch.anchor], dim=-1), ref_logp, log_target=True, reduction="sum")
    return loss + anchor_weight * kl
