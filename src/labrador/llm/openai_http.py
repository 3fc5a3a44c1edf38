"""Client for OpenAI-compatible HTTP servers (vLLM, llama.cpp server, `ilab model serve`, hosted APIs).

- Several endpoints: each request goes to the endpoint with the fewest requests in flight (ties: round
  robin), and each endpoint has its own concurrency limit (`max_concurrency`), so a slow server is not flooded
  while others idle.
- Retries: the policy of `labrador.llm.retry` (connection errors, timeouts, HTTP 429 and 5xx, with backoff),
  each attempt possibly on another endpoint. Other 4xx answers are the caller's fault and fail at once. After
  the last attempt an `EndpointError` names the endpoint and the last error in one line.
- `n` is passed through; servers that return fewer choices get the rest as separate requests (seed + i).
- `stream` reads server-sent events (one request, no retries: text already handed out cannot be taken back).
- `loglikelihoods` uses /v1/completions with `echo` + `logprobs` (vLLM, llama.cpp server support it).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from tenacity import AsyncRetrying, Retrying

from labrador.errors import EndpointError, LabradorError
from labrador.llm import base
from labrador.llm.base import DEFAULT_PARAMS, Completion, ContextOverflow, Delta, Message, SamplingParams
from labrador.llm.retry import Retryable, policy


def normalize_url(url: str) -> str:
    """Base URL ending in /v1: accepts `http://h:8000`, `http://h:8000/`, `http://h:8000/v1`."""
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise LabradorError(f"Endpoint URL '{url}' must start with http:// or https:// (e.g. http://127.0.0.1:8000/v1).")
    return url if url.endswith("/v1") else url + "/v1"


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass
class _Endpoint:
    url: str
    limit: int
    in_flight: int = 0
    sync_slots: threading.BoundedSemaphore = field(init=False)
    async_slots: weakref.WeakKeyDictionary = field(default_factory=weakref.WeakKeyDictionary)

    def __post_init__(self) -> None:
        self.sync_slots = threading.BoundedSemaphore(self.limit)

    def async_slot(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        sem = self.async_slots.get(loop)
        if sem is None:
            sem = self.async_slots[loop] = asyncio.Semaphore(self.limit)
        return sem


@contextlib.contextmanager
def _transport_errors(url: str, timeout: float) -> Iterator[None]:
    """httpx's timeouts and connection failures as `Retryable`, in one line."""
    try:
        yield
    except httpx.TimeoutException:
        raise Retryable(f"no answer within the {timeout:g} s timeout", url) from None
    except httpx.TransportError as err:
        raise Retryable(f"{type(err).__name__}: {_one_line(err, 160) or 'connection failed'}", url) from None


def _check_response(response: httpx.Response, url: str) -> dict[str, Any]:
    """JSON body of a 200; Retryable for 429/5xx; EndpointError for other answers."""
    status = response.status_code
    if status == 200:
        try:
            return response.json()
        except ValueError:
            raise EndpointError(f"Endpoint {url} answered with invalid JSON: {_one_line(response.text, 120)}") from None
    body = _one_line(response.text, 200)
    if status == 429 or status >= 500:
        retry_after = response.headers.get("retry-after")
        try:
            delay = float(retry_after) if retry_after else None
        except ValueError:
            delay = None
        raise Retryable(f"HTTP {status}: {body}", url, delay)
    hint = " (check --api-key)" if status in (401, 403) else ""
    raise EndpointError(f"Endpoint {url} rejected the request with HTTP {status}{hint}: {body}")


class OpenAIHTTPClient:
    """`LLMClient` over one or more OpenAI-compatible endpoints."""

    def __init__(self, endpoint_urls: list[str], *, model: str | None = None, api_key: str | None = None,
                 timeout: float = 120.0, max_retries: int = 4, backoff: float = 0.5,
                 max_concurrency: int = 8) -> None:
        if not endpoint_urls:
            raise LabradorError("No endpoint URL given; pass --endpoint-url http://HOST:PORT/v1.")
        self.endpoints = [_Endpoint(normalize_url(u), max(1, max_concurrency)) for u in endpoint_urls]
        self._model = model
        self.timeout, self.max_retries, self.backoff = timeout, max(0, max_retries), backoff
        self._policy = policy(self.max_retries, backoff, self._failure)
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(timeout=timeout, headers=self._headers)
        self._async_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self._turn = itertools.count()
        self._busy_since: float | None = None
        self.busy_seconds = 0.0
        self.requests = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.context_length: int | None = None

    # -- endpoint choice and accounting --
    @contextlib.contextmanager
    def _endpoint(self) -> Iterator[_Endpoint]:
        """The endpoint with the fewest requests in flight (ties: round robin), for one attempt; the client
        counts as busy while any attempt is in flight."""
        with self._lock:
            turn = next(self._turn)
            n = len(self.endpoints)
            endpoint = min((self.endpoints[(turn + i) % n] for i in range(n)), key=lambda e: e.in_flight)
            endpoint.in_flight += 1
            if self._busy_since is None:
                self._busy_since = time.perf_counter()
        try:
            yield endpoint
        finally:
            with self._lock:
                endpoint.in_flight -= 1
                if self._busy_since is not None and not any(e.in_flight for e in self.endpoints):
                    self.busy_seconds += time.perf_counter() - self._busy_since
                    self._busy_since = None

    @staticmethod
    def _failure(error: Retryable, attempts: int) -> EndpointError:
        return EndpointError(f"Endpoint {error.where} failed after {attempts} attempt{'s' * (attempts > 1)}: "
                             f"{error}. Check that the server is running and reachable.")

    # -- transport (one httpx.AsyncClient per event loop) --
    def _send(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        for attempt in Retrying(**self._policy):
            with attempt, self._endpoint() as endpoint, _transport_errors(endpoint.url, self.timeout):
                with endpoint.sync_slots:
                    response = self._http.request(method, endpoint.url + path, json=payload)
                return _check_response(response, endpoint.url)
        raise AssertionError("unreachable: the retry policy returns or raises")

    def _async_http(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._async_clients.get(loop)
        if client is None:
            client = self._async_clients[loop] = httpx.AsyncClient(timeout=self.timeout, headers=self._headers)
        return client

    async def _asend(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        http = self._async_http()
        async for attempt in AsyncRetrying(**self._policy):
            with attempt, self._endpoint() as endpoint, _transport_errors(endpoint.url, self.timeout):
                async with endpoint.async_slot():
                    response = await http.request(method, endpoint.url + path, json=payload)
                return _check_response(response, endpoint.url)
        raise AssertionError("unreachable: the retry policy returns or raises")

    # -- model name --
    @staticmethod
    def _first_model(body: dict[str, Any], url: str) -> str:
        try:
            return str(body["data"][0]["id"])
        except (KeyError, IndexError, TypeError):
            raise EndpointError(f"Endpoint {url}: /v1/models lists no model; pass the model name with -m.") from None

    @property
    def model_name(self) -> str:
        if self._model is None:
            self._model = self._first_model(self._send("GET", "/models"), self.endpoints[0].url)
        return self._model

    async def _amodel_name(self) -> str:
        if self._model is None:
            self._model = self._first_model(await self._asend("GET", "/models"), self.endpoints[0].url)
        return self._model

    # -- requests --
    @staticmethod
    def _payload(model: str, params: SamplingParams, n: int, seed: int | None) -> dict[str, Any]:
        payload: dict[str, Any] = {"model": model, "temperature": params.temperature, "top_p": params.top_p,
                                   "max_tokens": params.max_tokens, "n": n}
        if params.stop:
            payload["stop"] = list(params.stop)
        if seed is not None:
            payload["seed"] = seed
        return payload

    def _parse(self, body: dict[str, Any], chat: bool, model: str) -> Completion:
        try:
            choices = body["choices"]
            texts = [(c["message"]["content"] or "") if chat else c["text"] for c in choices]
        except (KeyError, TypeError) as err:
            raise EndpointError(f"Endpoint answer for model {model} has no {err} field: "
                                f"{_one_line(body, 160)}") from None
        usage = body.get("usage") or {}
        result = Completion(texts=texts, prompt_tokens=int(usage.get("prompt_tokens") or 0),
                            completion_tokens=int(usage.get("completion_tokens") or 0),
                            finish_reasons=[c.get("finish_reason") or "stop" for c in choices],
                            model=str(body.get("model") or model))
        with self._lock:
            self.requests += 1
            self.prompt_tokens += result.prompt_tokens
            self.completion_tokens += result.completion_tokens
        return result

    @staticmethod
    def _merge(first: Completion, more: list[Completion], n: int) -> Completion:
        for extra in more:
            first.texts.extend(extra.texts)
            first.finish_reasons.extend(extra.finish_reasons)
            first.completion_tokens += extra.completion_tokens
        del first.texts[n:], first.finish_reasons[n:]
        return first

    @staticmethod
    def _missing_seeds(params: SamplingParams, got: int) -> list[int | None]:
        """The seeds of the samples still owed by a server that ignored `n` and returned `got` of them."""
        return [None if params.seed is None else params.seed + i for i in range(got, params.n)]

    def _run(self, path: str, body_key: str, content: Any, params: SamplingParams) -> Completion:
        model = self.model_name
        chat = path == "/chat/completions"

        def call(n: int, seed: int | None) -> Completion:
            return self._parse(self._send("POST", path, {body_key: content, **self._payload(model, params, n, seed)}),
                               chat, model)

        first = call(params.n, params.seed)  # then the samples a server that ignored n still owes, one by one
        return self._merge(first, [call(1, s) for s in self._missing_seeds(params, len(first.texts))], params.n)

    async def _arun(self, path: str, body_key: str, content: Any, params: SamplingParams) -> Completion:
        model = await self._amodel_name()
        chat = path == "/chat/completions"

        async def call(n: int, seed: int | None) -> Completion:
            body = await self._asend("POST", path, {body_key: content, **self._payload(model, params, n, seed)})
            return self._parse(body, chat, model)

        first = await call(params.n, params.seed)
        more = await asyncio.gather(*[call(1, s) for s in self._missing_seeds(params, len(first.texts))])
        return self._merge(first, list(more), params.n)

    def chat(self, messages: list[Message], params: SamplingParams = DEFAULT_PARAMS) -> Completion:
        return self._run("/chat/completions", "messages", messages, params)

    async def achat(self, messages: list[Message], params: SamplingParams = DEFAULT_PARAMS) -> Completion:
        return await self._arun("/chat/completions", "messages", messages, params)

    def complete(self, prompt: str, params: SamplingParams = DEFAULT_PARAMS) -> Completion:
        return self._run("/completions", "prompt", prompt, params)

    async def acomplete(self, prompt: str, params: SamplingParams = DEFAULT_PARAMS) -> Completion:
        return await self._arun("/completions", "prompt", prompt, params)

    def stream(self, request: list[Message] | str, params: SamplingParams = DEFAULT_PARAMS,
               cancel: threading.Event | None = None) -> Iterator[Delta]:
        chat = isinstance(request, list)
        payload = {"messages" if chat else "prompt": request, **self._payload(self.model_name, params, 1, params.seed),
                   "stream": True}
        endpoint = self.endpoints[0]
        url = endpoint.url + ("/chat/completions" if chat else "/completions")
        reason: str | None = None
        try:
            with self._http.stream("POST", url, json=payload) as reply:
                if reply.status_code != 200:
                    reply.read()
                    raise _stream_refused(url, reply)
                for line in reply.iter_lines():
                    if (cancel is not None and cancel.is_set()) or line.strip() == "data: [DONE]":
                        break
                    for text, finish in _sse_choices(line, url, chat):
                        reason = finish or reason
                        if text:
                            yield Delta(text)
        except httpx.HTTPError as err:
            raise EndpointError(f"Lost the connection to {url} ({err}); check that the server is running.") from None
        yield Delta("", reason or "stop")

    async def astream(self, request: list[Message] | str, params: SamplingParams = DEFAULT_PARAMS,
                      cancel: threading.Event | None = None) -> AsyncIterator[Delta]:
        """`stream` read on a thread, so that the event loop never waits on the socket."""
        pieces = self.stream(request, params, cancel)
        while (piece := await asyncio.to_thread(next, pieces, None)) is not None:
            yield piece

    def loglikelihoods(self, context: str, continuations: list[str]) -> list[float]:
        """Sum of the continuation tokens' logprobs, from /v1/completions with echo=true and logprobs."""
        model = self.model_name
        start = len(context.rstrip(" "))  # a trailing space belongs to the continuation's first token
        results = []
        for continuation in continuations:
            text = context + continuation
            body = self._send("POST", "/completions", {"model": model, "prompt": text, "max_tokens": 1,
                                                       "temperature": 0.0, "echo": True, "logprobs": 1})
            results.append(self._sum_logprobs(body, start, len(text)))
        return results

    def _sum_logprobs(self, body: dict[str, Any], start: int, end: int) -> float:
        try:
            logprobs = body["choices"][0]["logprobs"]
            offsets, values = logprobs["text_offset"], logprobs["token_logprobs"]
        except (KeyError, IndexError, TypeError):
            offsets, values = None, None
        picked = [v for o, v in zip(offsets or [], values or [], strict=False) if start <= o < end]
        if not picked or any(v is None for v in picked):
            raise LabradorError(f"Endpoint {self.endpoints[0].url} does not return prompt log-probabilities "
                                "(/v1/completions with echo and logprobs), which likelihood scoring needs; use a "
                                "server that supports them (vLLM, llama.cpp server) or a local model file.")
        return float(sum(picked))

    def close(self) -> None:
        """Close the sync connection pool; async pools close with `aclose()` (or with their event loop)."""
        self._http.close()
        self._async_clients.clear()

    async def aclose(self) -> None:
        client = self._async_clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()
        self.close()

    def __enter__(self) -> OpenAIHTTPClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _sse_choices(line: str, url: str, chat: bool) -> list[tuple[str, str | None]]:
    """(text, finish_reason) of each choice in one server-sent event line (none for other lines)."""
    if not line.startswith("data:"):
        return []
    chunk = json.loads(line[5:].strip())
    if "error" in chunk:
        raise EndpointError(f"{url}: {chunk['error'].get('message', chunk['error'])}")
    return [(((c.get("delta") or {}).get("content") if chat else c.get("text")) or "", c.get("finish_reason"))
            for c in chunk.get("choices", [])]


def _stream_refused(url: str, reply: httpx.Response) -> LabradorError:
    try:
        message = reply.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = reply.text[:200]
    overflow = reply.status_code == 400 and base.looks_like_overflow(str(message))
    return (ContextOverflow if overflow else EndpointError)(f"{url} answered {reply.status_code}: {message}")
