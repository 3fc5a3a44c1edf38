"""OpenAI wire format: parse request bodies into `GenerationRequest`, build error objects.

Only the fields the backends honour are read; unknown fields are ignored (as OpenAI-compatible servers do),
but a known field with a wrong type is a 400 that names the field.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

Message = dict[str, str]


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


@dataclass
class GenerationRequest:
    """One chat or completion request, normalised (exactly one of `messages` / `prompt` is set)."""

    messages: list[Message] | None = None
    prompt: str | None = None
    model: str = ""
    max_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    n: int = 1
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    stream: bool = False
    include_usage: bool = False
    extra: dict[str, float] = field(default_factory=dict)  # llama.cpp sampling fields beyond OpenAI's
    echo: bool = False  # completions: return the prompt before the generated text
    logprobs: int | None = None  # completions: per-token log-probabilities with this many alternatives


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def now() -> int:
    return int(time.time())


def _number(body: dict[str, Any], name: str, default: float, low: float, high: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RequestError(f"'{name}' must be a number, got {value!r}.", param=name)
    if not low <= value <= high:
        raise RequestError(f"'{name}' must be between {low} and {high}, got {value}.", param=name)
    return float(value)


def _integer(body: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(f"'{name}' must be an integer, got {value!r}.", param=name)
    if not low <= value <= high:
        raise RequestError(f"'{name}' must be between {low} and {high}, got {value}.", param=name)
    return value


# name -> (low, high): sampling knobs llama.cpp-style servers accept beyond the OpenAI set.
EXTRA_SAMPLING: dict[str, tuple[float, float]] = {
    "top_k": (0, 1000), "min_p": (0.0, 1.0), "repeat_penalty": (0.0, 10.0),
    "presence_penalty": (-2.0, 2.0), "frequency_penalty": (-2.0, 2.0),
}


def _extra(body: dict[str, Any]) -> dict[str, float]:
    extra = {name: _number(body, name, 0.0, low, high) for name, (low, high) in EXTRA_SAMPLING.items()
             if body.get(name) is not None}
    if "top_k" in extra:
        extra["top_k"] = int(extra["top_k"])
    return extra


def _stop(body: dict[str, Any]) -> list[str]:
    value = body.get("stop")
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(s, str) for s in value) and len(value) <= 16:
        return list(value)
    raise RequestError("'stop' must be a string or a list of at most 16 strings.", param="stop")


def _content_text(content: Any, index: int) -> str:
    """Message content is a string or a list of text parts (the newer OpenAI format)."""
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if isinstance(content, list):
        parts = []
        for part in content:
            if not (isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)):
                raise RequestError(f"messages[{index}].content: only text parts are supported.",
                                   param=f"messages[{index}].content")
            parts.append(part["text"])
        return "".join(parts)
    raise RequestError(f"messages[{index}].content must be a string.", param=f"messages[{index}].content")


def _messages(body: dict[str, Any]) -> list[Message]:
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise RequestError("'messages' must be a non-empty list of {role, content} objects.", param="messages")
    messages: list[Message] = []
    for i, message in enumerate(raw):
        if not isinstance(message, dict):
            raise RequestError(f"messages[{i}] must be an object with 'role' and 'content'.", param="messages")
        role = message.get("role")
        if role not in ("system", "user", "assistant", "developer", "tool"):
            raise RequestError(f"messages[{i}].role must be system, user or assistant, got {role!r}.",
                               param=f"messages[{i}].role")
        messages.append({"role": "system" if role == "developer" else role,
                         "content": _content_text(message.get("content"), i)})
    return messages


def _prompt(body: dict[str, Any]) -> str:
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise RequestError("'prompt' must be a string (one prompt per request).", param="prompt")
    return prompt


def parse_request(body: Any, *, chat: bool) -> GenerationRequest:
    """Validate a decoded JSON body; RequestError (400) names the first bad field."""
    if not isinstance(body, dict):
        raise RequestError("The request body must be a JSON object.")
    least = 1 if chat else 0  # max_tokens 0 with echo scores a prompt without generating
    max_tokens = _integer(body, "max_completion_tokens", least, 1 << 20)
    if max_tokens is None:
        max_tokens = _integer(body, "max_tokens", least, 1 << 20)
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise RequestError("'stream' must be true or false.", param="stream")
    options = body.get("stream_options") or {}
    n = _integer(body, "n", 1, 16) or 1
    if stream and n != 1:
        raise RequestError("'n' must be 1 when streaming.", param="n")
    model = body.get("model", "")
    echo = body.get("echo", False)
    if not isinstance(echo, bool):
        raise RequestError("'echo' must be true or false.", param="echo")
    logprobs = None if chat else _integer(body, "logprobs", 0, 5)
    if logprobs is not None and stream:
        raise RequestError("'logprobs' is not supported when streaming.", param="logprobs")
    return GenerationRequest(
        messages=_messages(body) if chat else None,
        prompt=None if chat else _prompt(body),
        model=model if isinstance(model, str) else "",
        max_tokens=max_tokens,
        temperature=_number(body, "temperature", 1.0, 0.0, 2.0),
        top_p=_number(body, "top_p", 1.0, 0.0, 1.0),
        n=n,
        stop=_stop(body),
        seed=_integer(body, "seed", -(1 << 63), (1 << 64) - 1),
        stream=stream,
        include_usage=bool(isinstance(options, dict) and options.get("include_usage")),
        extra=_extra(body),
        echo=echo and not chat,
        logprobs=logprobs,
    )


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def response(req: GenerationRequest, model: str, texts: list[tuple[str, str]], prompt_tokens: int,
             completion_tokens: int) -> dict[str, Any]:
    """A full (non-streaming) response; `texts` holds (text, finish_reason) per choice."""
    if req.messages is not None:
        choices = [{"index": i, "message": {"role": "assistant", "content": text}, "logprobs": None,
                    "finish_reason": reason} for i, (text, reason) in enumerate(texts)]
        return {"id": new_id("chatcmpl"), "object": "chat.completion", "created": now(), "model": model,
                "choices": choices, "usage": usage(prompt_tokens, completion_tokens)}
    choices = [{"index": i, "text": text, "logprobs": None, "finish_reason": reason}
               for i, (text, reason) in enumerate(texts)]
    return {"id": new_id("cmpl"), "object": "text_completion", "created": now(), "model": model,
            "choices": choices, "usage": usage(prompt_tokens, completion_tokens)}


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
        if self.chat:
            delta = {"content": text} if text else {}
            return self._chunk([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}])
        return self._chunk([{"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}])

    def usage(self, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
        chunk = self._chunk([])
        chunk["usage"] = usage(prompt_tokens, completion_tokens)
        return chunk
