"""Fuzzing the server's request parser (hypothesis): `serve.protocol.parse_request` and the app's body reader.

Whatever a client sends, the parser answers a `GenerationRequest` whose text is valid Unicode, or a
`RequestError` (400) naming the field; the app answers 200 or an OpenAI error object with a 4xx status, never
a 500, never an exception out of the ASGI app and never an ERROR in the log. The app runs in-process over a
canned model (no llama.cpp), driven through its ASGI interface with the body cut into random pieces.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labrador.llm.base import Delta, SamplingParams
from labrador.serve.app import create_app
from labrador.serve.engine import ServedModel
from labrador.serve.protocol import GenerationRequest, RequestError, parse_request

FUZZ = settings(max_examples=200, deadline=None,  # caplog is cleared by hand for every example
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
FIELDS = ["model", "messages", "prompt", "max_tokens", "max_completion_tokens", "temperature", "top_p", "n",
          "stop", "seed", "stream", "stream_options", "top_k", "min_p", "repeat_penalty", "presence_penalty",
          "frequency_penalty", "echo", "logprobs", "role", "content", "type", "text", "include_usage"]
TEXT = (st.text(alphabet=st.characters(exclude_categories=[]), max_size=12)  # lone surrogates too
        | st.sampled_from(["\ud800", "a\udfffb", "\ud83d\ude00"]))
SCALARS = (st.none() | st.booleans() | st.integers(-(1 << 70), 1 << 70) | st.sampled_from([0, 1, 2, 16, 17])
           | st.floats(allow_nan=True, allow_infinity=True) | TEXT | st.sampled_from(FIELDS)
           | st.sampled_from(["user", "system", "assistant", "developer", "tool", "text", "wizard"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.sampled_from(FIELDS) | TEXT, inner, max_size=5), max_leaves=25)
MESSAGE = st.fixed_dictionaries({"role": st.sampled_from(["user", "system", "developer", "wizard"]) | VALUES},
                                optional={"content": TEXT | VALUES})
BODIES = st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=8) | st.fixed_dictionaries(
    {"messages": st.lists(MESSAGE, max_size=3)}, optional={name: VALUES for name in FIELDS[2:12]}) | VALUES


def _all_text(req: GenerationRequest) -> list[str]:
    texts = [req.prompt or "", *req.stop]  # (the "model" field is ignored: a single-model server)
    return texts + [message["content"] for message in req.messages or []]


@FUZZ
@given(BODIES, st.booleans())
def test_parse_request_gives_a_request_or_a_request_error(body: Any, chat: bool) -> None:
    try:
        req = parse_request(body, chat=chat)
    except RequestError as err:
        assert err.status == 400 and str(err)
        assert err.param is None or isinstance(err.param, str)
        json.dumps(err.body()).encode()  # the error object can always be sent
        return
    assert (req.messages is None) != (req.prompt is None)
    for text in _all_text(req):
        text.encode("utf-8")  # what reaches the model is valid Unicode


class CannedClient:
    """An `LLMClient` that answers every request with the same two pieces (no model)."""

    context_length = 64

    async def astream(self, request: Any, params: SamplingParams | None = None,
                      cancel: threading.Event | None = None) -> AsyncIterator[Delta]:
        yield Delta("canned")
        yield Delta("", finish_reason="stop", prompt_tokens=3, completion_tokens=1)

    def close(self) -> None:
        pass


APP = create_app(ServedModel(CannedClient(), "canned"), max_body_bytes=4096)  # type: ignore[arg-type]


async def _call(path: str, pieces: list[bytes], headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
    """One request through the ASGI interface; the body arrives in `pieces`."""
    events = [{"type": "http.request", "body": piece, "more_body": i < len(pieces) - 1}
              for i, piece in enumerate(pieces or [b""])]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if events:
            return events.pop(0)
        await asyncio.sleep(3600)  # the client stays connected until the answer is complete
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8000)}
    await asyncio.wait_for(APP(scope, receive, send), timeout=10)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def _check_answer(status: int, body: bytes, caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    if status == 200:
        assert body.startswith((b"{", b"data: "))
        return
    assert status in (400, 413), (status, body)
    error = json.loads(body)["error"]
    assert error["type"] == "invalid_request_error" and error["message"]


@pytest.fixture(scope="module")
def loop() -> Any:
    with asyncio.Runner() as runner:
        yield runner


@FUZZ
@given(BODIES, st.sampled_from(["/v1/chat/completions", "/v1/completions"]), st.lists(st.integers(0, 1 << 16)))
def test_app_answers_json_bodies_with_200_or_a_4xx(loop: asyncio.Runner, caplog: pytest.LogCaptureFixture,
                                                    body: Any, path: str, cuts: list[int]) -> None:
    caplog.clear()
    try:
        data = json.dumps(body).encode()
    except ValueError:  # a float NaN/inf is written as NaN/Infinity, which is fine; nothing else fails here
        return
    status, answer = loop.run(_call(path, _cut(data, cuts), [(b"content-type", b"application/json")]))
    _check_answer(status, answer, caplog)


RAW = (st.binary(max_size=300) | st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass"))
       | st.integers(1, 3000).map(lambda depth: b"[" * depth + b"]" * depth)
       | st.integers(1, 3000).map(lambda depth: b'{"messages": ' + b"[" * depth)
       | st.sampled_from([b"", b"null", b"NaN", b'"\\ud800"', b'{"prompt": "\\udfff"}', b"\xef\xbb\xbf{}",
                          b'{"messages": [{"role": "user", "content": "\\ud83d"}]}', b"1e999", b"-0"]))


@FUZZ
@given(RAW, st.sampled_from(["/v1/chat/completions", "/v1/completions"]), st.lists(st.integers(0, 1 << 16)),
       st.sampled_from([[], [(b"content-length", b"5")], [(b"content-length", b"x")],
                        [(b"content-length", b"99999999999999999999")], [(b"transfer-encoding", b"chunked")]]))
def test_app_answers_any_bytes_with_200_or_a_4xx(loop: asyncio.Runner, caplog: pytest.LogCaptureFixture,
                                                 data: bytes, path: str, cuts: list[int],
                                                 headers: list[tuple[bytes, bytes]]) -> None:
    caplog.clear()
    status, answer = loop.run(_call(path, _cut(data, cuts), headers))
    _check_answer(status, answer, caplog)
