"""The one inference interface every stage uses (generation, evaluation, chat).

Backends (llama.cpp in-process, OpenAI-compatible endpoints, transformers) implement `LLMClient`.
Construct clients with `labrador.llm.get_client(...)`; never import a backend module directly from a stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": "..."}


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 256
    n: int = 1
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def cache_key(self) -> dict[str, Any]:
        """The fields that change the output (used by on-disk caches)."""
        return {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens,
                "n": self.n, "stop": list(self.stop), "seed": self.seed}


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


@runtime_checkable
class LLMClient(Protocol):
    """A model that can be asked for chat or plain completions.

    Sync methods may be called from several threads; async methods from one event loop. Implementations
    bound their own concurrency (a llama.cpp model decodes one request at a time per context).
    """

    model_name: str

    def chat(self, messages: list[Message], params: SamplingParams = SamplingParams()) -> Completion: ...

    async def achat(self, messages: list[Message], params: SamplingParams = SamplingParams()) -> Completion: ...

    def complete(self, prompt: str, params: SamplingParams = SamplingParams()) -> Completion: ...

    def loglikelihoods(self, context: str, continuations: list[str]) -> list[float]:
        """Sum of log-probabilities of each continuation's tokens given the context (for MMLU-style scoring)."""
        ...

    def close(self) -> None: ...
