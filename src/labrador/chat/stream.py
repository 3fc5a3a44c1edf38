"""Streaming on top of `LLMClient` (whose contract has no streaming method) for the terminal chat.

`Streamer.stream(messages, params, cancel)` yields text pieces as they are generated:
- a client with its own `stream_chat(messages, params)` is used as is;
- the in-process llama.cpp client is streamed through its model and worker thread (the same prompt rendering
  as its `chat`, so streamed and non-streamed answers agree);
- an OpenAI-compatible endpoint is streamed with server-sent events over httpx;
- anything else falls back to one non-streamed `chat` call.
It also counts prompt tokens where the backend can, so the chat trims old turns before the context overflows.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from typing import Any

from labrador.errors import EndpointError, LabradorError
from labrador.llm.base import LLMClient, Message, SamplingParams

_DONE = object()


class ContextOverflow(LabradorError):
    """The conversation does not fit in the model's context window."""


def looks_like_overflow(error: BaseException) -> bool:
    text = str(error).lower()
    return "context" in text and any(w in text for w in ("exceed", "too long", "length", "window", "maximum"))


class Streamer:
    def __init__(self, client: LLMClient, *, endpoint: str | None = None, api_key: str | None = None,
                 timeout: float = 600.0) -> None:
        self.client = client
        self.endpoint = endpoint.rstrip("/") if endpoint else None
        self.api_key = api_key
        self.timeout = timeout

    @property
    def _llama(self) -> Any | None:
        """The llama.cpp model inside an in-process client, when that is what we have."""
        llm = getattr(self.client, "_llm", None)
        return llm if llm is not None and hasattr(self.client, "chat_prompt_tokens") else None

    @property
    def context_length(self) -> int | None:
        value = getattr(self.client, "context_length", None)
        return int(value) if isinstance(value, int) else None

    def prompt_tokens(self, messages: list[Message]) -> int | None:
        """Tokens the conversation takes with the chat template applied (None when unknown)."""
        count = getattr(self.client, "chat_prompt_tokens", None)
        return len(count(messages)) if callable(count) else None

    def stream(self, messages: list[Message], params: SamplingParams,
               cancel: threading.Event | None = None) -> Iterator[str]:
        cancel = cancel or threading.Event()
        own = getattr(self.client, "stream_chat", None)
        if callable(own):
            yield from own(messages, params)
        elif self.endpoint:
            yield from self._stream_http(messages, params, cancel)
        elif self._llama is not None:
            yield from self._stream_llama(messages, params, cancel)
        else:
            yield self.client.chat(messages, params).text

    # -- in-process llama.cpp ----------------------------------------------------------------------------
    def _stream_llama(self, messages: list[Message], params: SamplingParams,
                      cancel: threading.Event) -> Iterator[str]:
        import llama_cpp

        tokens = self.client.chat_prompt_tokens(messages)  # type: ignore[attr-defined]
        context = self.context_length or 0
        room = context - len(tokens)
        if room <= 0:
            raise ContextOverflow(f"The conversation has {len(tokens)} tokens; the context window is {context}.")
        pieces: queue.Queue[Any] = queue.Queue()
        llm = self._llama

        def job() -> None:
            try:
                chunks = llm.create_completion(
                    prompt=tokens, max_tokens=max(1, min(params.max_tokens, room)), stream=True,
                    temperature=max(params.temperature, 0.0), top_p=params.top_p, top_k=0, min_p=0.0,
                    repeat_penalty=1.0, stop=list(params.stop) or None, seed=params.seed,
                    stopping_criteria=llama_cpp.StoppingCriteriaList([lambda _i, _l: cancel.is_set()]))
                for chunk in chunks:
                    text = chunk["choices"][0]["text"]
                    if text:
                        pieces.put(text)
            except BaseException as err:  # noqa: BLE001 - re-raised in the reading thread
                pieces.put(err)
            finally:
                pieces.put(_DONE)

        worker = getattr(self.client, "_worker", None)
        if worker is not None:  # the client's own thread: the model is never used by two threads at once
            worker.submit(job)
        else:
            threading.Thread(target=job, daemon=True).start()
        try:
            while (item := pieces.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancel.set()

    # -- OpenAI-compatible endpoint ------------------------------------------------------------------------
    def _stream_http(self, messages: list[Message], params: SamplingParams,
                     cancel: threading.Event) -> Iterator[str]:
        import httpx

        body = {"model": getattr(self.client, "model_name", "") or "", "messages": messages, "stream": True,
                "max_tokens": params.max_tokens, "temperature": params.temperature, "top_p": params.top_p}
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:
            body["seed"] = params.seed
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        url = f"{self.endpoint}/chat/completions"
        try:
            with httpx.stream("POST", url, json=body, headers=headers, timeout=self.timeout) as reply:
                if reply.status_code != 200:
                    reply.read()
                    raise _http_error(url, reply)
                for line in reply.iter_lines():
                    if cancel.is_set():
                        return
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    chunk = json.loads(data)
                    if "error" in chunk:
                        raise EndpointError(f"{url}: {chunk['error'].get('message', chunk['error'])}")
                    for choice in chunk.get("choices", []):
                        text = (choice.get("delta") or {}).get("content")
                        if text:
                            yield text
        except httpx.HTTPError as err:
            raise EndpointError(f"Lost the connection to {url} ({err}); check that the server is running.") \
                from None


def _http_error(url: str, reply: Any) -> LabradorError:
    try:
        message = reply.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = reply.text[:200]
    error_class = ContextOverflow if reply.status_code == 400 and looks_like_overflow(Exception(message)) \
        else EndpointError
    return error_class(f"{url} answered {reply.status_code}: {message}")
