"""A single worker thread that runs one in-process model's requests in order, with usage counters.

A llama.cpp context (and a CPU torch model) decodes one request at a time and is not thread-safe. Callers from
many threads, or from one asyncio loop, submit jobs to a queue; the worker picks the next job as soon as the
previous one ends, so the CPU never waits for a caller to come back between requests. `busy_seconds` is the time
the worker spent inside jobs: the generation stage divides it by wall time to report teacher utilisation.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class SerialWorker:
    """Runs submitted callables one at a time on a dedicated thread and counts busy time and tokens."""

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._lock = threading.Lock()
        self.busy_seconds = 0.0
        self.requests = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def _timed(self, fn: Callable[[], T]) -> T:
        start = time.perf_counter()
        try:
            return fn()
        finally:
            with self._lock:
                self.busy_seconds += time.perf_counter() - start
                self.requests += 1

    def count_tokens(self, prompt: int, completion: int) -> None:
        with self._lock:
            self.prompt_tokens += prompt
            self.completion_tokens += completion

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        return self._executor.submit(self._timed, fn)

    def run(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the worker and wait for it (from any thread)."""
        return self.submit(fn).result()

    async def arun(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the worker without blocking the event loop."""
        return await asyncio.wrap_future(self.submit(fn))

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


class WorkerCounters:
    """The usage counters of an in-process client, read from its `SerialWorker` (teacher utilisation is
    busy_seconds / wall time)."""

    _worker: SerialWorker

    @property
    def busy_seconds(self) -> float:
        return self._worker.busy_seconds

    @property
    def requests(self) -> int:
        return self._worker.requests

    @property
    def prompt_tokens(self) -> int:
        return self._worker.prompt_tokens

    @property
    def completion_tokens(self) -> int:
        return self._worker.completion_tokens
