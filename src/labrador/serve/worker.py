"""One thread owns the model; asyncio handlers queue work on it and await the result.

A llama.cpp context (and a CPU transformers model) decodes one request at a time, so concurrent HTTP requests
wait their turn in a FIFO queue instead of failing. Streaming jobs push items to the event loop as they are
produced (`loop.call_soon_threadsafe`), so tokens reach the client while the model is still generating.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from labrador.serve.protocol import GenerationRequest, RequestError

T = TypeVar("T")
Emit = Callable[[Any], None]
Cancelled = Callable[[], bool]

_DONE = object()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class WorkerBackend:
    """Base of the in-process backends: a single worker thread and the shutdown flag.

    Subclasses implement `generate(req, cancelled)` (a full OpenAI response dict) and
    `produce(req, emit, cancelled)` (emits OpenAI chunk dicts), both run on the worker thread.
    """

    model_id: str = ""
    context_size: int = 0

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="labrador-model")
        self._closing = threading.Event()

    # -- implemented by subclasses (worker thread) --------------------------------------------------------
    def generate(self, req: GenerationRequest, cancelled: Cancelled) -> dict[str, Any]:
        raise NotImplementedError

    def produce(self, req: GenerationRequest, emit: Emit, cancelled: Cancelled) -> None:
        raise NotImplementedError

    def unload(self) -> None:
        """Free the model (worker thread, after the last job)."""

    # -- used by the HTTP layer (event loop) -------------------------------------------------------------
    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    def _shutting_down(self) -> RequestError:
        return RequestError("The server is shutting down; this request was stopped. Retry on another server.",
                            status=503, kind="server_error", code="shutting_down")

    async def complete(self, req: GenerationRequest, stop: threading.Event | None = None) -> dict[str, Any]:
        """A full response; setting `stop` (the client went away) ends the generation at the next token."""
        stop = stop or threading.Event()

        def cancelled() -> bool:
            return stop.is_set() or self._closing.is_set()

        result = await self.run(self.generate, req, cancelled)
        if self._closing.is_set():  # cut short: an empty or partial text must not look like an answer
            raise self._shutting_down()
        return result

    async def stream(self, req: GenerationRequest) -> AsyncIterator[dict[str, Any]]:
        """Chunks as the worker produces them; leaving the loop early (client gone) stops generation."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()

        def cancelled() -> bool:
            return stop.is_set() or self._closing.is_set()

        def emit(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the event loop is gone (shutdown): nobody is listening any more
                stop.set()

        def job() -> None:
            try:
                if not cancelled():
                    self.produce(req, emit, cancelled)
                if self._closing.is_set():
                    emit(_Failure(self._shutting_down()))
            except BaseException as err:  # noqa: BLE001 - handed to the awaiting coroutine
                emit(_Failure(err))
            finally:
                emit(_DONE)

        loop.run_in_executor(self._executor, job)
        try:
            while True:
                item = await queue.get()
                if item is _DONE:
                    return
                if isinstance(item, _Failure):
                    raise item.error
                yield item
        finally:
            stop.set()

    def begin_shutdown(self) -> None:
        """Stop running and queued generations at their next token (they answer 503)."""
        self._closing.set()

    def close(self) -> None:
        """Stop running generations at their next token, wait for the worker, free the model."""
        self._closing.set()
        self._executor.shutdown(wait=True, cancel_futures=True)
        self.unload()
