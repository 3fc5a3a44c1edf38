"""Teacher calls: an on-disk cache, bounded concurrency, timeouts, retries and busy/wall accounting.

Every call is keyed by (model, messages, sampling params, sample index) and stored in an SQLite file under
`cache_dir()/sdg/teacher_cache.sqlite` as soon as it returns (autocommit, WAL journal): a run killed with SIGKILL
loses at most the calls that were in flight, and a re-run replays finished work for free. SQLite rather than
JSONL because several runs may share the cache and a torn final line can never happen.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labrador import paths
from labrador.errors import EndpointError
from labrador.llm.base import LLMClient, Message, SamplingParams


def cache_path() -> Path:
    return paths.cache_dir() / "sdg" / "teacher_cache.sqlite"


class TeacherCache:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        # `label` (pipeline block and prompt) and `request` are kept for inspection and fixture recording.
        self._db.execute("CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, text TEXT NOT NULL, "
                         "prompt_tokens INTEGER, completion_tokens INTEGER, created REAL, label TEXT, "
                         "request TEXT, finish TEXT)")
        have = {row[1] for row in self._db.execute("PRAGMA table_info(calls)")}
        for column in ("label", "request", "finish"):  # caches written by earlier versions
            if column not in have:
                self._db.execute(f"ALTER TABLE calls ADD COLUMN {column} TEXT")

    @staticmethod
    def key(model: str, request: list[Message] | str, params: SamplingParams, sample_index: int) -> str:
        blob = json.dumps({"model": model, "messages": request, "params": params.cache_key(),
                           "sample": sample_index}, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()

    def get(self, key: str) -> tuple[str, int, int, str] | None:
        with self._lock:
            row = self._db.execute("SELECT text, prompt_tokens, completion_tokens, finish FROM calls WHERE key=?",
                                   (key,)).fetchone()
        return (row[0], row[1] or 0, row[2] or 0, row[3] or "stop") if row else None

    def put(self, key: str, text: str, prompt_tokens: int, completion_tokens: int, label: str = "",
            request: Any = None, finish: str = "stop") -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             (key, text, prompt_tokens, completion_tokens, time.time(), label,
                              json.dumps(request, ensure_ascii=False), finish))

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


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

    def __init__(self, client: LLMClient, *, workers: int = 8, timeout: float = 120.0, retries: int = 0,
                 cache: TeacherCache | None = None, use_cache: bool = True) -> None:
        self.client = client
        self.model = getattr(client, "model_name", "teacher")
        self.workers = max(1, workers)
        self.timeout = timeout
        self.retries = retries
        self.cache = cache if cache is not None else (TeacherCache() if use_cache else None)
        self.stats = TeacherStats()
        self._semaphore: asyncio.Semaphore | None = None
        self.local = hasattr(client, "busy_seconds")  # in-process backends count their own busy time
        self._inflight = 0
        self._inflight_since = 0.0

    def _sem(self) -> asyncio.Semaphore:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.workers)
        return self._semaphore

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

        Raises EndpointError after the retries are spent (the caller counts it per leaf). The timeout covers
        one request; an in-process teacher queues requests itself, so it gets no timeout here (a slow CPU
        is not an error).
        """
        key = TeacherCache.key(self.model, request, params, sample_index)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                self.stats.cache_hits += 1
                return CallResult(hit[0], hit[1], hit[2], cached=True, finish_reason=hit[3])
        last_error: BaseException | None = None
        for attempt in range(self.retries + 1):
            async with self._sem():
                self._enter()
                try:
                    self.stats.requests += 1
                    if self.local:
                        completion = await self._ask(request, params)
                    else:
                        # HTTP clients time out and retry themselves; this is a safety net for clients that do not.
                        completion = await asyncio.wait_for(self._ask(request, params), 3 * self.timeout + 1)
                except asyncio.CancelledError:
                    raise
                except TimeoutError:
                    last_error = TimeoutError(f"no answer within {self.timeout:g} s")
                    self.stats.errors += 1
                    # A hanging endpoint will hang again: one retry at most, so a dead leaf fails fast.
                    if attempt >= 1:
                        break
                    continue
                except Exception as err:  # noqa: BLE001 - any backend failure is retried, then reported
                    last_error = err
                    self.stats.errors += 1
                    await asyncio.sleep(min(2.0, 0.25 * 2**attempt))
                    continue
                finally:
                    self._leave()
            text = completion.text
            finish = (completion.finish_reasons or ["stop"])[0] or "stop"
            self.stats.prompt_tokens += completion.prompt_tokens
            self.stats.completion_tokens += completion.completion_tokens
            if self.cache is not None:
                self.cache.put(key, text, completion.prompt_tokens, completion.completion_tokens, label, request,
                               finish)
            return CallResult(text, completion.prompt_tokens, completion.completion_tokens, cached=False,
                              finish_reason=finish)
        raise EndpointError(f"teacher '{self.model}' failed: {type(last_error).__name__}: {last_error}")

    def busy_seconds(self) -> float:
        """Teacher busy time: the backend's own counter when it has one (llama.cpp), else in-flight time."""
        value = getattr(self.client, "busy_seconds", None)
        if callable(value):
            value = value()
        return float(value) if isinstance(value, (int, float)) else self.stats.inflight_seconds

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()
