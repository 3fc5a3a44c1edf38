"""The HTTP layer: an OpenAI-compatible Starlette app over one served model (`engine.ServedModel`).

Routes: GET /health, GET /v1/models[/{id}], POST /v1/chat/completions, POST /v1/completions. Every route needs
the API key when one is set (401). Bodies over the size limit get 413, undecodable JSON 400; errors use the
OpenAI error object `{"error": {"message", "type", "param", "code"}}` so the official client raises the right
exception. The server is single-model: the request's "model" field is accepted whatever it says.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from labrador.serve.engine import ServedModel
from labrador.serve.protocol import RequestError, error_body, now, parse_request

log = logging.getLogger("labrador.serve")

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
_DRAIN_LIMIT = 64 * 1024 * 1024  # read and drop at most this much of a refused body, then drop the connection


def _json(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(), status_code=status,
                    headers=headers, media_type="application/json")


class Guard:
    """ASGI middleware: API key and body size checks before any route runs (cheap: headers only)."""

    def __init__(self, app: ASGIApp, *, api_key: str | None, max_body_bytes: int) -> None:
        self.app = app
        self.expected = f"Bearer {api_key}".encode() if api_key else None
        self.api_key = api_key.encode() if api_key else None
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if self.expected is not None and not self._authorized(headers):
            await refuse(receive, send, 401, "Missing or wrong API key: send 'Authorization: Bearer "
                         "<key>' with the key the server was started with.", "invalid_api_key",
                         kind="authentication_error")
            return
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            await refuse(receive, send, 413, f"The request body is larger than the server's limit of "
                         f"{self.max_body_bytes} bytes.", "request_too_large")
            return
        await self.app(scope, receive, send)

    def _authorized(self, headers: dict[bytes, bytes]) -> bool:
        return (hmac.compare_digest(headers.get(b"authorization", b""), self.expected or b"")
                or hmac.compare_digest(headers.get(b"x-api-key", b""), self.api_key or b""))

async def refuse(receive: Receive, send: Send, status: int, message: str, code: str, *,
                 kind: str = "invalid_request_error", headers: dict[str, str] | None = None) -> None:
    """Answer `status` with the OpenAI error object without running a route."""
    # Read the body the client is sending first: answering in the middle of its upload makes most clients
    # report a broken connection instead of our status.
    drained = 0
    while drained <= _DRAIN_LIMIT:
        event = await receive()
        drained += len(event.get("body", b""))
        if event["type"] != "http.request" or not event.get("more_body", False):
            break
    await _json(error_body(message, kind=kind, code=code), status, headers)({"type": "http"}, receive, send)


async def _read_json(request: Request, limit: int) -> Any:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():  # chunked uploads carry no Content-Length: count as we read
        size += len(chunk)
        if size > limit:
            raise RequestError(f"The request body is larger than the server's limit of {limit} bytes.",
                               status=413, code="request_too_large")
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RequestError(f"The request body is not valid JSON: {err}.", code="invalid_json") from None
    except RecursionError:  # deeper than Python's JSON parser can go (no request needs more than a few levels)
        raise RequestError("The request body is nested too deeply to be read as JSON.", code="invalid_json") from None


async def _watch_disconnect(request: Request, stop: threading.Event) -> None:
    """Set `stop` when the client hangs up before its (non-streamed) answer is ready."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            stop.set()
            return


def _sse(chunk: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(chunk, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


async def _events(first: dict[str, Any], rest: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    yield _sse(first)
    try:
        async for chunk in rest:
            yield _sse(chunk)
    except RequestError as err:
        yield _sse(err.body())
    except Exception as err:  # noqa: BLE001 - the status line is gone already; report in-band
        log.exception("generation failed while streaming")
        yield _sse(error_body(f"Generation failed: {err}", kind="server_error"))
    yield b"data: [DONE]\n\n"


def create_app(backend: ServedModel, *, api_key: str | None = None,
               max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> ASGIApp:
    model_card = {"id": backend.model_id, "object": "model", "created": now(), "owned_by": "labrador",
                  "max_model_len": backend.context_size}

    async def health(_request: Request) -> Response:
        return _json({"status": "ok", "model": backend.model_id})

    async def models(_request: Request) -> Response:
        return _json({"object": "list", "data": [model_card]})

    async def one_model(request: Request) -> Response:
        if request.path_params["model"] != backend.model_id:
            return _json(error_body(f"The model '{request.path_params['model']}' does not exist; this server "
                                    f"serves '{backend.model_id}'.", code="model_not_found"), 404)
        return _json(model_card)

    async def generate(request: Request, *, chat: bool) -> Response:
        try:
            req = parse_request(await _read_json(request, max_body_bytes), chat=chat)
            if not req.stream:
                stop = threading.Event()
                watcher = asyncio.create_task(_watch_disconnect(request, stop))
                try:
                    return _json(await backend.complete(req, stop))
                finally:
                    watcher.cancel()
            chunks = aiter(backend.stream(req))
            # Wait for the first chunk before sending the status line, so that a refused request (context
            # too long) still gets a proper 400 instead of an error inside a 200 stream.
            try:
                first = await anext(chunks)
            except StopAsyncIteration:
                return _json(error_body("The model produced no output.", kind="server_error"), 500)
            return StreamingResponse(_events(first, chunks), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        except RequestError as err:
            return _json(err.body(), err.status)
        except ClientDisconnect:  # gone mid-body: the connection layer logs it; nobody reads this answer
            return Response(status_code=400)
        except Exception as err:  # noqa: BLE001 - one bad request must not take the server down
            log.exception("generation failed")
            return _json(error_body(f"Generation failed: {err}", kind="server_error"), 500)

    async def http_error(_request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        message = {404: "No such route; see /v1/models, /v1/chat/completions, /v1/completions, /health.",
                   405: "Method not allowed on this route."}.get(status, "Internal server error.")
        return _json(error_body(message, code=str(status)), status)

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/models/{model:path}", one_model, methods=["GET"]),
        Route("/v1/chat/completions", functools.partial(generate, chat=True), methods=["POST"]),
        Route("/v1/completions", functools.partial(generate, chat=False), methods=["POST"]),
    ]
    app = Starlette(routes=routes, exception_handlers={404: http_error, 405: http_error})
    return Guard(app, api_key=api_key, max_body_bytes=max_body_bytes)
