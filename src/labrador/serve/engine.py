"""The served model: OpenAI requests turned into `labrador.llm` calls, answers into OpenAI objects.

Every generation is streamed from the client (`LLMClient.astream`), also for non-streamed requests, so that a
client that hangs up, or a server shutting down, ends it at the next token; streamed and whole answers
therefore agree. Requests wait their turn in the client's own queue (an in-process model decodes one at a
time). Per-token `logprobs` come from the llama.cpp client's `ascore` (other backends answer 400).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from labrador.llm.base import ContextOverflow, Delta, LLMClient, Request, SamplingParams
from labrador.serve.protocol import ChunkMaker, GenerationRequest, RequestError, logprobs_object, response


@contextlib.contextmanager
def _as_request_errors() -> Iterator[None]:
    try:
        yield
    except ContextOverflow as err:
        raise RequestError(f"{err}", code="context_length_exceeded", param="messages") from None


class ServedModel:
    """One `LLMClient` behind the HTTP routes, with the server's shutdown flag."""

    def __init__(self, client: LLMClient, model_id: str) -> None:
        self.client = client
        self.model_id = model_id
        self.context_size = int(getattr(client, "context_length", 0) or 0)
        self._closing = threading.Event()
        self._active: set[threading.Event] = set()

    @contextlib.contextmanager
    def _cancel(self, stop: threading.Event | None = None) -> Iterator[threading.Event]:
        """An event that ends the generation: set by `stop` (client gone) or by shutdown."""
        event = stop or threading.Event()
        self._active.add(event)
        if self._closing.is_set():
            event.set()
        try:
            yield event
        finally:  # also ends a generation whose reader left early
            event.set()
            self._active.discard(event)

    def _shutting_down(self) -> RequestError:
        return RequestError("The server is shutting down; this request was stopped. Retry on another server.",
                            status=503, kind="server_error", code="shutting_down")

    def _pieces(self, req: GenerationRequest, seed: int | None, cancel: threading.Event) -> AsyncIterator[Delta]:
        request: Request = req.messages if req.messages is not None else req.prompt or ""
        params = SamplingParams(temperature=req.temperature, top_p=req.top_p, seed=seed, stop=tuple(req.stop),
                                max_tokens=self.context_size if req.max_tokens is None else req.max_tokens,
                                extra=tuple(req.extra.items()))
        return self.client.astream(request, params, cancel)

    async def _sample(self, req: GenerationRequest, seed: int | None, cancel: threading.Event) -> tuple[str, Delta]:
        """One whole answer: (text, the last piece, which holds the finish reason and the token counts)."""
        texts, last = [], None
        with _as_request_errors():
            async for piece in self._pieces(req, seed, cancel):
                texts.append(piece.text)
                last = piece
        if last is None or self._closing.is_set():  # cut short: a partial text must not look like an answer
            raise self._shutting_down()
        return "".join(texts), last

    async def complete(self, req: GenerationRequest, stop: threading.Event | None = None) -> dict[str, Any]:
        """A full response (a completion may ask for `echo` and `logprobs`; max_tokens 0 only echoes); setting
        `stop` (the client went away) ends the generation at the next token."""
        with self._cancel(stop) as cancel:
            score = getattr(self.client, "ascore", None)
            if req.logprobs is not None and score is None:
                raise RequestError("'logprobs' is not supported by this backend; serve a GGUF file (llama-cpp "
                                   "backend) for likelihood scoring.", param="logprobs")
            prompt = req.prompt or ""
            choices: list[tuple[str, str, dict[str, Any] | None]] = []
            prompt_tokens = generated = 0
            for i in range(req.n):
                text, reason, logprobs = "", "length", None
                if req.max_tokens != 0:
                    text, last = await self._sample(req, None if req.seed is None else req.seed + i, cancel)
                    reason, prompt_tokens = last.finish_reason or "stop", last.prompt_tokens
                    generated += last.completion_tokens
                if score is not None and req.logprobs is not None:
                    pieces, values, tops, prompt_tokens = await score(prompt, text, req.logprobs, req.echo)
                    logprobs = logprobs_object(pieces, values, tops)
                choices.append((prompt + text if req.echo else text, reason, logprobs))
            return response(req, self.model_id, choices, prompt_tokens, generated)

    async def stream(self, req: GenerationRequest) -> AsyncIterator[dict[str, Any]]:
        """OpenAI chunks as the model produces them; leaving the loop early (client gone) stops generation."""
        maker = ChunkMaker(req, self.model_id)
        with self._cancel() as cancel, _as_request_errors():
            pieces = aiter(self._pieces(req, req.seed, cancel))
            piece = await anext(pieces, None)  # a refused prompt raises here, before any chunk is sent
            if maker.chat:
                yield maker.role()
            elif req.echo and req.prompt:
                yield maker.text(req.prompt)
            while piece is not None and piece.finish_reason is None:
                yield maker.text(piece.text)
                piece = await anext(pieces, None)
            if piece is None or self._closing.is_set():
                raise self._shutting_down()
            yield maker.text("", piece.finish_reason)
            if req.include_usage:
                yield maker.usage(piece.prompt_tokens, piece.completion_tokens)

    def begin_shutdown(self) -> None:
        """Stop running and queued generations at their next token (they answer 503)."""
        self._closing.set()
        for event in list(self._active):
            event.set()

    def close(self) -> None:
        self.begin_shutdown()
        self.client.close()
