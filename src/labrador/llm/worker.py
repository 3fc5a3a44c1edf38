"""In-process backends: one worker thread per model, the thread-count rule, and the shared client methods.

A llama.cpp context (and a CPU torch model) decodes one request at a time and is not thread-safe. Callers from
many threads, or from one asyncio loop, submit jobs to a queue; the worker picks the next job as soon as the
previous one ends, so the CPU never waits for a caller to come back between requests. `busy_seconds` is the time
the worker spent inside jobs: the generation stage divides it by wall time to report teacher utilisation.
Streaming jobs hand their pieces to the caller as they are produced (a queue for threads,
`loop.call_soon_threadsafe` for an event loop), so tokens arrive while the model is still generating.
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from labrador.errors import LabradorError
from labrador.llm.base import (
    DEFAULT_PARAMS,
    Completion,
    ContextOverflow,
    Delta,
    Message,
    Request,
    SamplingParams,
)

T = TypeVar("T")
Emit = Callable[[Delta], None]
Cancelled = Callable[[], bool]
_DONE = object()


def default_threads() -> int:
    """Half the logical CPUs (at least 1), llama-cpp-python's own default: the one rule for CPU threads.

    ggml's worker threads busy-wait between steps: with as many threads as logical CPUs, any other load on
    the machine (hyperthread siblings, other processes) stalls every token; on a shared 2-core machine
    2 threads decoded SmolLM2 25x slower than 1. Pass n_threads to use more.
    """
    return max(1, (os.cpu_count() or 2) // 2)


def n_samples(params: SamplingParams,
              sample: Callable[[int], tuple[str, str, int]]) -> tuple[list[str], list[str], int]:
    """Texts and finish reasons of `params.n` samples (`sample(i)`: text, finish reason and tokens of the one
    drawn with seed + i), and their summed tokens. Greedy decoding is deterministic: samples 2..n repeat the
    first instead of decoding it again."""
    samples: list[tuple[str, str, int]] = []
    for i in range(params.n):
        samples.append(samples[0] if params.temperature <= 0 and samples else sample(i))
    return [s[0] for s in samples], [s[1] for s in samples], sum(s[2] for s in samples)


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

    def _start(self, produce: Callable[[Emit, Cancelled], None], put: Callable[[Any], None],
               stop: threading.Event, cancel: threading.Event | None) -> None:
        def cancelled() -> bool:
            return stop.is_set() or (cancel is not None and cancel.is_set())

        def job() -> None:
            try:
                if not cancelled():
                    produce(put, cancelled)
            except BaseException as err:  # noqa: BLE001 - re-raised in the consuming thread or coroutine
                put(err)
            finally:
                put(_DONE)

        self.submit(job)

    def stream(self, produce: Callable[[Emit, Cancelled], None], cancel: threading.Event | None) -> Iterator[Delta]:
        """Run `produce(emit, cancelled)` on the worker and yield what it emits; leaving the loop stops it."""
        pieces: queue.Queue[Any] = queue.Queue()
        stop = threading.Event()
        self._start(produce, pieces.put, stop, cancel)
        try:
            while (item := pieces.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()

    async def astream(self, produce: Callable[[Emit, Cancelled], None],
                      cancel: threading.Event | None) -> AsyncIterator[Delta]:
        """`stream` for an event loop: the worker hands pieces over without blocking the loop."""
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()

        def put(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(pieces.put_nowait, item)
            except RuntimeError:  # the event loop is gone (shutdown): nobody is listening any more
                stop.set()

        self._start(produce, put, stop, cancel)
        try:
            while (item := await pieces.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


def _counter(name: str) -> property:
    return property(lambda self: getattr(self._worker, name))


class InProcessClient:
    """The `LLMClient` methods shared by the in-process backends, each run on the client's `SerialWorker`.

    A backend sets `model_name`, `context_length` and `_worker`, and implements `_generate(request, params)`
    (a whole `Completion`), `_produce(request, params, emit, cancelled)` (streamed `Delta`s of one sample) and
    `_loglikelihoods(context, continuations)`.
    """

    model_name: str
    context_length: int
    _worker: SerialWorker
    _closed = False

    # usage counters (teacher utilisation is busy_seconds / wall time)
    busy_seconds = _counter("busy_seconds")
    requests = _counter("requests")
    prompt_tokens = _counter("prompt_tokens")
    completion_tokens = _counter("completion_tokens")

    def _generate(self, request: Request, params: SamplingParams) -> Completion:
        raise NotImplementedError

    def _produce(self, request: Request, params: SamplingParams, emit: Emit, cancelled: Cancelled) -> None:
        raise NotImplementedError

    def _loglikelihoods(self, context: str, continuations: list[str]) -> list[float]:
        raise NotImplementedError

    def _running(self) -> SerialWorker:
        """The worker, while the client is open."""
        if self._closed:
            raise LabradorError(f"The client for {self.model_name} is closed.")
        return self._worker

    def _check_room(self, n_prompt: int) -> int:
        """Tokens left for the answer; ContextOverflow when the prompt fills the context window."""
        room = self.context_length - n_prompt
        if room <= 0:
            raise ContextOverflow(f"The prompt has {n_prompt} tokens but {self.model_name} has a context window "
                                  f"of {self.context_length}; shorten the prompt or raise n_ctx.")
        return room

    def chat(self, messages: list[Message], params: SamplingParams = DEFAULT_PARAMS) -> Completion:
        return self._running().run(lambda: self._generate(messages, params))

    async def achat(self, messages: list[Message], params: SamplingParams = DEFAULT_PARAMS) -> Completion:
        return await self._running().arun(lambda: self._generate(messages, params))

    def complete(self, prompt: str, params: SamplingParams = DEFAULT_PARAMS) -> Completion:
        return self._running().run(lambda: self._generate(prompt, params))

    async def acomplete(self, prompt: str, params: SamplingParams = DEFAULT_PARAMS) -> Completion:
        return await self._running().arun(lambda: self._generate(prompt, params))

    def stream(self, request: Request, params: SamplingParams = DEFAULT_PARAMS,
               cancel: threading.Event | None = None) -> Iterator[Delta]:
        return self._running().stream(partial(self._produce, request, params), cancel)

    def astream(self, request: Request, params: SamplingParams = DEFAULT_PARAMS,
                cancel: threading.Event | None = None) -> AsyncIterator[Delta]:
        return self._running().astream(partial(self._produce, request, params), cancel)

    def loglikelihoods(self, context: str, continuations: list[str]) -> list[float]:
        return self._running().run(lambda: self._loglikelihoods(context, continuations))

    def _unload(self) -> None:
        """Free the model (after the worker's last job)."""

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._worker.close()
        self._unload()

    def __enter__(self) -> InProcessClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
