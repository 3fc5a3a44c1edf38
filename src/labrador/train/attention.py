"""Variable-length attention for packed rows without flash-attention: one causal sdpa call per sample.

transformers' sdpa path turns restarting position ids into a dense block-diagonal mask over the whole packed
row, so it computes (and masks away) every cross-sample block: quadratic in the row length, and sdpa cannot
use its fast causal kernel with an arbitrary mask. Here each sample's queries attend only to its own keys with
`is_causal=True`, so the work is the same as running the samples one by one, with one big row for the
matmuls. Registered as attention implementation "labrador_packed"; transformers then builds no mask at all.
"""

from __future__ import annotations

from typing import Any

NAME = "labrador_packed"
_registered = False


def segment_bounds(position_ids: Any) -> list[tuple[int, int]]:
    """(start, end) of each sample in a packed row: a sample starts where its position id is 0."""
    import torch

    row = position_ids[0]
    starts = torch.nonzero(row == 0).flatten().tolist()
    if not starts or starts[0] != 0:
        starts = [0, *starts]
    ends = [*starts[1:], row.shape[0]]
    return list(zip(starts, ends, strict=True))


def packed_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, scaling: float | None = None,
                     dropout: float = 0.0, **kwargs: Any) -> tuple[Any, None]:
    """query [1, heads, T, d], key/value [1, kv_heads, T, d] -> output [1, T, heads, d]."""
    import torch
    import torch.nn.functional as F

    position_ids = kwargs.get("position_ids")
    if query.shape[2] != key.shape[2] or attention_mask is not None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout,
                                      **kwargs)
    if key.shape[1] != query.shape[1]:  # grouped-query attention: share each key/value head
        repeat = query.shape[1] // key.shape[1]
        key, value = key.repeat_interleave(repeat, dim=1), value.repeat_interleave(repeat, dim=1)
    packed = position_ids is not None and query.shape[0] == 1
    bounds = segment_bounds(position_ids) if packed else [(0, query.shape[2])]
    outputs = [F.scaled_dot_product_attention(query[:, :, a:b], key[:, :, a:b], value[:, :, a:b], is_causal=True,
                                              scale=scaling, dropout_p=dropout) for a, b in bounds]
    out = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=2)
    return out.transpose(1, 2).contiguous(), None


def register() -> str:
    """Make "labrador_packed" a valid `attn_implementation`; returns the name."""
    global _registered
    if not _registered:
        from transformers import AttentionInterface

        AttentionInterface.register(NAME, packed_attention)
        _registered = True
    return NAME
