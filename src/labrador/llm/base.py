"""The one inference interface every stage uses (generation, evaluation, chat, the HTTP server).

Backends (llama.cpp in-process, OpenAI-compatible endpoints, transformers, vLLM) implement `LLMClient`.
Construct clients with `labrador.llm.get_client(...)`; never import a backend module directly from a stage.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from labrador.errors import LabradorError

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": "..."}
Request = list[Message] | str  # a chat (messages) or a plain completion (prompt text)


class ContextOverflow(LabradorError):
    """The prompt does not fit in the model's context window."""


def looks_like_overflow(message: str) -> bool:
    """Whether a server's error message says that the prompt does not fit in the context window."""
    text = message.lower()
    return "context" in text and any(w in text for w in ("exceed", "too long", "length", "window", "maximum"))


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 256
    n: int = 1
    stop: tuple[str, ...] = ()
    seed: int | None = None
    # llama.cpp sampling knobs beyond OpenAI's (top_k, min_p, repeat_penalty, ...), as (name, value) pairs; only
    # the server passes them through from its clients.
    extra: tuple[tuple[str, float], ...] = ()

    def cache_key(self) -> dict[str, Any]:
        """The fields that change the output (used by on-disk caches)."""
        key = {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens,
               "n": self.n, "stop": list(self.stop), "seed": self.seed}
        if self.extra:  # absent when unused, so keys written before the field existed still match
            key["extra"] = [list(pair) for pair in self.extra]
        return key


DEFAULT_PARAMS = SamplingParams()  # frozen, so sharing one default instance is safe


@dataclass
class Completion:
    """`n` sampled texts for one request, with token usage summed over them."""

    texts: list[str]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reasons: list[str] = field(default_factory=list)
    model: str = ""

    @property
    def text(self) -> str:
        return self.texts[0] if self.texts else ""


@dataclass
class Delta:
    """One piece of a streamed answer; the last piece has empty text, the finish reason and the token counts."""

    text: str
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


@runtime_checkable
class LLMClient(Protocol):
    """A model that can be asked for chat or plain completions, whole or streamed.

    Sync methods may be called from several threads; async methods from one event loop. Implementations
    bound their own concurrency (a llama.cpp model decodes one request at a time per context).
    `stream` yields the first sample (`params.n` is ignored) and stops at the next token once `cancel` is set
    or the caller leaves the loop.
    """

    model_name: str

    def chat(self, messages: list[Message], params: SamplingParams = DEFAULT_PARAMS) -> Completion: ...

    async def achat(self, messages: list[Message], params: SamplingParams = DEFAULT_PARAMS) -> Completion: ...

    def complete(self, prompt: str, params: SamplingParams = DEFAULT_PARAMS) -> Completion: ...

    async def acomplete(self, prompt: str, params: SamplingParams = DEFAULT_PARAMS) -> Completion: ...

    def stream(self, request: Request, params: SamplingParams = DEFAULT_PARAMS,
               cancel: threading.Event | None = None) -> Iterator[Delta]: ...

    def astream(self, request: Request, params: SamplingParams = DEFAULT_PARAMS,
                cancel: threading.Event | None = None) -> AsyncIterator[Delta]: ...

    def loglikelihoods(self, context: str, continuations: list[str]) -> list[float]:
        """Sum of log-probabilities of each continuation's tokens given the context (for MMLU-style scoring)."""
        ...

    def close(self) -> None: ...
