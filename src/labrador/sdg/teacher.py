"""Teacher calls: the on-disk call cache, bounded concurrency, a timeout and busy/wall accounting.

Every call is keyed by (model, messages, sampling params, sample index) and stored in the call cache
(`labrador.llm.cache`) at `cache_dir()/sdg/teacher_cache.sqlite` as soon as it returns: a run killed with
SIGKILL loses at most the calls that were in flight, and a re-run replays finished work for free. Retries are
the client's (`labrador.llm.retry`); a call that still fails is counted and reported here.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labrador import paths
from labrador.errors import EndpointError
from labrador.llm.base import LLMClient, Message, SamplingParams
from labrador.llm.cache import CallCache, digest


def cache_path() -> Path:
    return paths.cache_dir() / "sdg" / "teacher_cache.sqlite"


def call_key(model: str, request: list[Message] | str, params: SamplingParams, sample_index: int) -> str:
    return digest({"model": model, "messages": request, "params": params.cache_key(), "sample": sample_index})


@dataclass
class CallResult:
    text: str
    prompt_tokens: int
    completion_tokens: int
    cached: bool
    finish_reason: str = "stop"  # "length" when the answer was cut by max_tokens


@dataclass
class TeacherStats:
    requests: int = 0  # calls that reached the teacher
    cache_hits: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    inflight_seconds: float = 0.0  # wall time during which at least one request was in flight


class Teacher:
    """Wraps an LLMClient: cache first, then at most `workers` concurrent requests, each with a timeout."""

    def __init__(self, client: LLMClient, *, workers: int = 8, timeout: float = 120.0,
                 cache: CallCache | None = None, use_cache: bool = True) -> None:
        self.client = client
        self.model = getattr(client, "model_name", "teacher")
        self.workers = max(1, workers)
        self.timeout = timeout
        self.cache = cache if cache is not None else (CallCache(cache_path()) if use_cache else None)
        self.stats = TeacherStats()
        self._semaphore = asyncio.Semaphore(self.workers)  # binds to the event loop on first use
        self.local = hasattr(client, "busy_seconds")  # in-process backends count their own busy time
        self._inflight = 0
        self._inflight_since = 0.0

    def _enter(self) -> None:
        if self._inflight == 0:
            self._inflight_since = time.perf_counter()
        self._inflight += 1

    def _leave(self) -> None:
        self._inflight -= 1
        if self._inflight == 0:
            self.stats.inflight_seconds += time.perf_counter() - self._inflight_since

    async def _ask(self, request: list[Message] | str, params: SamplingParams) -> Any:
        if isinstance(request, list):
            return await self.client.achat(request, params)
        acomplete = getattr(self.client, "acomplete", None)
        if acomplete is not None:
            return await acomplete(request, params)
        return await asyncio.to_thread(self.client.complete, request, params)

    async def call(self, request: list[Message] | str, params: SamplingParams, sample_index: int,
                   label: str = "") -> CallResult:
        """One sample of a chat (list of messages) or plain completion (str) request.

        Raises EndpointError when the client fails (the caller counts it per leaf). An in-process teacher
        queues requests itself, so it gets no timeout here (a slow CPU is not an error); HTTP clients time out
        and retry themselves, and `3 * timeout + 1` s is a safety net for clients that do not.
        """
        key = call_key(self.model, request, params, sample_index)
        hit = self.cache.get(key) if self.cache is not None else None
        if isinstance(hit, dict):
            self.stats.cache_hits += 1
            return CallResult(hit["text"], hit["prompt_tokens"], hit["completion_tokens"], cached=True,
                              finish_reason=hit["finish"])
        async with self._semaphore:
            self._enter()
            try:
                self.stats.requests += 1
                asked = self._ask(request, params)
                completion = await (asked if self.local else asyncio.wait_for(asked, 3 * self.timeout + 1))
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - any backend failure is counted, then reported
                self.stats.errors += 1
                if isinstance(err, TimeoutError):
                    err = TimeoutError(f"no answer within {self.timeout:g} s")
                raise EndpointError(f"teacher '{self.model}' failed: {type(err).__name__}: {err}") from None
            finally:
                self._leave()
        finish = (completion.finish_reasons or ["stop"])[0] or "stop"
        self.stats.prompt_tokens += completion.prompt_tokens
        self.stats.completion_tokens += completion.completion_tokens
        if self.cache is not None:
            self.cache.put(key, {"text": completion.text, "prompt_tokens": completion.prompt_tokens,
                                 "completion_tokens": completion.completion_tokens, "finish": finish}, label, request)
        return CallResult(completion.text, completion.prompt_tokens, completion.completion_tokens, cached=False,
                          finish_reason=finish)

    def busy_seconds(self) -> float:
        """Teacher busy time: the backend's own counter when it has one (llama.cpp), else in-flight time."""
        value = getattr(self.client, "busy_seconds", None)
        if callable(value):
            value = value()
        return float(value) if isinstance(value, (int, float)) else self.stats.inflight_seconds

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()
