"""What the terminal chat needs from a client beyond `chat`: streamed text pieces and prompt token counts.

`Streamer.stream(messages, params, cancel)` yields text pieces as they are generated, through the client's own
`stream` (in-process models on their worker thread, endpoints over server-sent events). It also counts prompt
tokens where the backend can, so the chat trims old turns before the context overflows.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from labrador.llm.base import LLMClient, Message, SamplingParams


class Streamer:
    def __init__(self, client: LLMClient) -> None:
        self.client = client

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
        for piece in self.client.stream(messages, params, cancel):
            if piece.text:
                yield piece.text
