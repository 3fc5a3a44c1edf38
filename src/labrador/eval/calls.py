"""Model calls for the evaluators: through the on-disk call cache of `labrador.llm.cache` (so a re-run after a
crash repeats no finished call), and a thread pool for concurrency.

The cache key is the model's fingerprint plus the exact request (messages or context/continuations, sampling
parameters). A sampled answer (temperature > 0) is therefore reused on a re-run; delete the cache file, or
pass `--no-cache`, to sample again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

from labrador import paths
from labrador.llm import LLMClient, Message, SamplingParams
from labrador.llm.cache import CallCache, digest

T = TypeVar("T")
R = TypeVar("R")


def default_cache_path() -> Path:
    return paths.cache_dir() / "eval" / "calls.sqlite"


def model_fingerprint(spec: str, client: LLMClient) -> str:
    """What identifies a model's outputs: its name plus, for a local file or directory, size and mtime (so a
    new checkpoint written to the same path is not answered from the cache)."""
    path = Path(spec).expanduser()
    parts = [spec, getattr(client, "model_name", "")]
    if path.exists():
        files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file())
        for f in files:
            st = f.stat()
            parts.append(f"{f.name}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


@dataclass
class Model:
    """A client with a display label and a cache fingerprint; all evaluator calls go through here."""

    label: str
    client: LLMClient
    fingerprint: str
    cache: CallCache = field(default_factory=lambda: CallCache(None))

    def chat(self, messages: list[Message], params: SamplingParams) -> str:
        key = digest(["chat", self.fingerprint, messages, params.cache_key()])
        cached = self.cache.get(key)
        if isinstance(cached, str):
            return cached
        text = self.client.chat(messages, params).text
        self.cache.put(key, text)
        return text

    def loglikelihoods(self, context: str, continuations: list[str]) -> list[float]:
        key = digest(["loglikelihoods", self.fingerprint, context, continuations])
        cached = self.cache.get(key)
        if isinstance(cached, list):
            return [float(v) for v in cached]
        values = [float(v) for v in self.client.loglikelihoods(context, continuations)]
        self.cache.put(key, values)
        return values


def parallel_map(fn: Callable[[T], R], items: Iterable[T], workers: int,
                 progress: Callable[[int], None] | None = None) -> list[R]:
    """fn over items with `workers` threads, results in input order; the first exception propagates."""
    items = list(items)
    pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 and len(items) > 1 else None
    with pool or contextlib.nullcontext():
        # without a pool each call runs here, in this thread, when its turn comes
        calls = [pool.submit(fn, item).result for item in items] if pool else [partial(fn, item) for item in items]
        results = []
        for call in calls:
            results.append(call())
            if progress:
                progress(1)
        return results
