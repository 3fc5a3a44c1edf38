"""Per-token log-probabilities for /v1/completions (`echo` + `logprobs`), as likelihood evaluations need.

llama-cpp-python only reports logprobs for models loaded with `logits_all=True`, which costs an
n_ctx x n_vocab float matrix per server. Instead the text is scored after generation in one extra pass with the
low-level decode API (logits for every position of one batch at a time), then the KV cache is cleared.
The generated part is scored by re-tokenizing the generated text, which gives the same tokens in practice.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def logprobs_object(pieces: list[bytes], values: list[float | None],
                    tops: list[dict[str, float] | None]) -> dict[str, Any]:
    """The OpenAI `logprobs` object; `text_offset` counts characters of the returned text."""
    joined = b"".join(pieces)
    offsets, position = [], 0
    for piece in pieces:
        offsets.append(len(joined[:position].decode("utf-8", errors="ignore")))
        position += len(piece)
    return {"tokens": [p.decode("utf-8", errors="replace") for p in pieces], "token_logprobs": values,
            "top_logprobs": tops, "text_offset": offsets}


def _log_softmax(rows: np.ndarray) -> np.ndarray:
    rows = rows.astype(np.float64)
    rows -= rows.max(axis=1, keepdims=True)
    return rows - np.log(np.exp(rows).sum(axis=1, keepdims=True))


def score_tokens(llama: Any, tokens: list[int], top_n: int) -> tuple[list[float | None], list[dict | None]]:
    """log P(tokens[i] | tokens[:i]) for every i (None for i = 0), with the top_n alternatives when asked."""
    n_vocab = llama.n_vocab()
    values: list[float | None] = [None]
    tops: list[dict | None] = [None]
    llama.n_tokens = 0  # llama-cpp-python's prefix cache must not reuse what we overwrite here
    llama._ctx.kv_cache_seq_rm(-1, 0, -1)
    try:
        for start in range(0, len(tokens) - 1, llama.n_batch):
            chunk = tokens[start:start + llama.n_batch]
            llama._batch.set_batch(batch=chunk, n_past=start, logits_all=True)
            llama._ctx.decode(llama._batch)
            rows = _log_softmax(np.ctypeslib.as_array(llama._ctx.get_logits(), shape=(len(chunk), n_vocab)))
            for j in range(len(chunk)):
                target = start + j + 1  # row j predicts the token after it
                if target >= len(tokens):
                    break
                values.append(float(rows[j, tokens[target]]))
                if top_n:
                    best = np.argpartition(rows[j], -top_n)[-top_n:]
                    tops.append({llama.detokenize([int(t)], special=True).decode("utf-8", "replace"):
                                 float(rows[j, t]) for t in best})
                else:
                    tops.append(None)
    finally:
        llama._ctx.kv_cache_seq_rm(-1, 0, -1)
        llama.n_tokens = 0
    return values, tops
