"""OpenAI wire format: request bodies validated with pydantic into `GenerationRequest`, response objects.

Only the fields the server honours are declared; unknown fields are ignored (as OpenAI-compatible servers do),
but a known field with a wrong type or value is a 400 that names the field (`param`).
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
)

from labrador.llm.base import Message


def _unicode(text: str) -> str:
    # JSON may spell a lone surrogate (\ud800); it is not text, and the tokenizer would fail on it with a 500
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(f"holds a lone surrogate (\\u{ord(text[err.start]):04x}) at character {err.start}, "
                         "which is not valid Unicode") from None
    return text


Number = StrictFloat | StrictInt
Text = Annotated[StrictStr, AfterValidator(_unicode)]
MAX_TOKENS = 1 << 20


class RequestError(Exception):
    """A request the server refuses; turned into an OpenAI-style error object with `status`."""

    def __init__(self, message: str, *, status: int = 400, param: str | None = None,
                 code: str | None = None, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.param = param
        self.code = code
        self.kind = kind

    def body(self) -> dict[str, Any]:
        return error_body(str(self), kind=self.kind, param=self.param, code=self.code)


def error_body(message: str, *, kind: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


class TextPart(BaseModel):
    type: Literal["text"]
    text: Text


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: Text | list[TextPart] | None = None

    def plain(self) -> Message:
        """{role, content} with text parts joined and the newer "developer" role read as "system"."""
        content = self.content if isinstance(self.content, str) else "".join(p.text for p in self.content or [])
        return {"role": "system" if self.role == "developer" else self.role, "content": content}


class _Body(BaseModel):
    """The fields chat and completion requests share."""

    model_config = ConfigDict(extra="ignore")

    model: Any = ""
    temperature: Annotated[Number, Field(ge=0.0, le=2.0)] = 1.0
    top_p: Annotated[Number, Field(ge=0.0, le=1.0)] = 1.0
    n: Annotated[StrictInt, Field(ge=1, le=16)] = 1
    stop: Text | Annotated[list[Text], Field(max_length=16)] | None = None
    seed: Annotated[StrictInt, Field(ge=-(1 << 63), le=(1 << 64) - 1)] | None = None
    stream: StrictBool = False
    stream_options: Any = None
    # llama.cpp sampling knobs beyond the OpenAI set
    top_k: Annotated[Number, Field(ge=0, le=1000)] | None = None
    min_p: Annotated[Number, Field(ge=0.0, le=1.0)] | None = None
    repeat_penalty: Annotated[Number, Field(ge=0.0, le=10.0)] | None = None
    presence_penalty: Annotated[Number, Field(ge=-2.0, le=2.0)] | None = None
    frequency_penalty: Annotated[Number, Field(ge=-2.0, le=2.0)] | None = None


class ChatBody(_Body):
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    max_tokens: Annotated[StrictInt, Field(ge=1, le=MAX_TOKENS)] | None = None
    max_completion_tokens: Annotated[StrictInt, Field(ge=1, le=MAX_TOKENS)] | None = None


class CompletionBody(_Body):
    prompt: Text | Annotated[list[Text], Field(min_length=1, max_length=1)]
    # 0 with echo scores a prompt without generating
    max_tokens: Annotated[StrictInt, Field(ge=0, le=MAX_TOKENS)] | None = None
    max_completion_tokens: Annotated[StrictInt, Field(ge=0, le=MAX_TOKENS)] | None = None
    echo: StrictBool = False
    logprobs: Annotated[StrictInt, Field(ge=0, le=5)] | None = None


EXTRA_SAMPLING = ("top_k", "min_p", "repeat_penalty", "presence_penalty", "frequency_penalty")


class GenerationRequest(BaseModel):
    """One chat or completion request, normalised (exactly one of `messages` / `prompt` is set)."""

    messages: list[Message] | None = None
    prompt: str | None = None
    model: str = ""
    max_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    n: int = 1
    stop: list[str] = Field(default_factory=list)
    seed: int | None = None
    stream: bool = False
    include_usage: bool = False
    extra: dict[str, float] = Field(default_factory=dict)  # llama.cpp sampling fields beyond OpenAI's
    echo: bool = False  # completions: return the prompt before the generated text
    logprobs: int | None = None  # completions: per-token log-probabilities with this many alternatives


def _param(loc: tuple[Any, ...]) -> str | None:
    """The request field a pydantic error location points at: `temperature`, `messages[0].role`."""
    if len(loc) >= 3 and loc[0] == "messages" and isinstance(loc[1], int):
        return f"messages[{loc[1]}].{loc[2]}"
    return str(loc[0]) if loc else None


def _validated(body: Any, chat: bool) -> ChatBody | CompletionBody:
    if not isinstance(body, dict):
        raise RequestError("The request body must be a JSON object.")
    try:
        return (ChatBody if chat else CompletionBody).model_validate(body)
    except ValidationError as err:
        errors = err.errors()
        # a value that is text but not Unicode fails one branch of a union (str | list) with our own message,
        # and the others with "should be a list": ours says what is wrong
        first = next((e for e in errors if e["type"] == "value_error"), errors[0])
        param = _param(tuple(first["loc"]))
        raise RequestError(f"Invalid '{param}': {first['msg'].removeprefix('Value error, ')}.",
                           param=param) from None


def parse_request(body: Any, *, chat: bool) -> GenerationRequest:
    """Validate a decoded JSON body; RequestError (400) names the first bad field."""
    parsed = _validated(body, chat)
    if parsed.stream and parsed.n != 1:
        raise RequestError("'n' must be 1 when streaming.", param="n")
    logprobs = None if isinstance(parsed, ChatBody) else parsed.logprobs
    if logprobs is not None and parsed.stream:
        raise RequestError("'logprobs' is not supported when streaming.", param="logprobs")
    extra = {name: getattr(parsed, name) for name in EXTRA_SAMPLING if getattr(parsed, name) is not None}
    if "top_k" in extra:
        extra["top_k"] = int(extra["top_k"])
    options = parsed.stream_options
    return GenerationRequest(
        messages=[m.plain() for m in parsed.messages] if isinstance(parsed, ChatBody) else None,
        prompt=None if isinstance(parsed, ChatBody) else
        (parsed.prompt if isinstance(parsed.prompt, str) else parsed.prompt[0]),
        model=parsed.model if isinstance(parsed.model, str) else "",
        max_tokens=parsed.max_completion_tokens if parsed.max_completion_tokens is not None else parsed.max_tokens,
        temperature=float(parsed.temperature), top_p=float(parsed.top_p), n=parsed.n,
        stop=[parsed.stop] if isinstance(parsed.stop, str) else list(parsed.stop or []),
        seed=parsed.seed, stream=parsed.stream,
        include_usage=bool(isinstance(options, dict) and options.get("include_usage")),
        extra=extra, echo=isinstance(parsed, CompletionBody) and parsed.echo, logprobs=logprobs)


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def now() -> int:
    return int(time.time())


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def response(req: GenerationRequest, model: str, texts: list[tuple[str, str, dict[str, Any] | None]],
             prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    """A full (non-streaming) response; `texts` holds (text, finish_reason, logprobs object or None) per choice."""
    chat = req.messages is not None
    choices = [{"index": i, **({"message": {"role": "assistant", "content": text}} if chat else {"text": text}),
                "logprobs": logprobs, "finish_reason": reason} for i, (text, reason, logprobs) in enumerate(texts)]
    return {"id": new_id("chatcmpl" if chat else "cmpl"), "object": "chat.completion" if chat else "text_completion",
            "created": now(), "model": model, "choices": choices, "usage": usage(prompt_tokens, completion_tokens)}


def logprobs_object(pieces: list[bytes], values: list[float | None],
                    tops: list[dict[str, float] | None]) -> dict[str, Any]:
    """The OpenAI `logprobs` object of a completion; `text_offset` counts characters of the returned text."""
    joined = b"".join(pieces)
    offsets, position = [], 0
    for piece in pieces:
        offsets.append(len(joined[:position].decode("utf-8", errors="ignore")))
        position += len(piece)
    return {"tokens": [p.decode("utf-8", errors="replace") for p in pieces], "token_logprobs": values,
            "top_logprobs": tops, "text_offset": offsets}


class ChunkMaker:
    """Builds the streaming chunks of one response (same id and timestamp on every chunk)."""

    def __init__(self, req: GenerationRequest, model: str) -> None:
        self.chat = req.messages is not None
        self.id = new_id("chatcmpl" if self.chat else "cmpl")
        self.created = now()
        self.model = model
        self.object = "chat.completion.chunk" if self.chat else "text_completion"

    def _chunk(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {"id": self.id, "object": self.object, "created": self.created, "model": self.model,
                "choices": choices}

    def role(self) -> dict[str, Any]:
        return self._chunk([{"index": 0, "delta": {"role": "assistant"}, "logprobs": None, "finish_reason": None}])

    def text(self, text: str, finish_reason: str | None = None) -> dict[str, Any]:
        body = {"delta": {"content": text} if text else {}} if self.chat else {"text": text}
        return self._chunk([{"index": 0, **body, "logprobs": None, "finish_reason": finish_reason}])

    def usage(self, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
        return {**self._chunk([]), "usage": usage(prompt_tokens, completion_tokens)}
