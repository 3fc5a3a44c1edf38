"""The HTTP/1.1 connection layer: uvicorn's h11 protocol with read timeouts and a connection limit.

uvicorn has no timeout on *receiving* a request: `timeout_keep_alive` only covers the silence between two
requests and is reset by every byte, so a client that sends half a request head (or half a body) and stops
holds its socket for ever, and a few hundred such sockets starve the server. ASGI middleware cannot help: it
runs once the head is complete. So the limits live here, per connection:

- the request head (request line and headers) must be complete `header_timeout` seconds after the connection
  was accepted, or after the first byte of the next request on a kept-alive connection: a total deadline, so
  a client dripping one header byte a second gains nothing;
- a body must keep coming: `body_timeout` seconds without a byte of it closes the connection (not counted
  while the server itself has paused reading because the app has not taken the previous bytes yet);
- over `max_connections` open connections, a request is answered 503 (the OpenAI error object) and its
  connection closed. A socket that never sends a request head is not answered at all: the header deadline
  closes it.

A client that disconnects while sending its body is logged as one INFO line; timeouts on a body are INFO, on
a head DEBUG (port scanners and idle pre-connections are routine). This builds on uvicorn's `H11Protocol`
internals (`conn`, `cycle`, `flow`, `transport`, `connections`); tests/test_serve_limits.py checks each
promise against a real server, so an uvicorn change that breaks them fails there.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from labrador.serve.app import refuse
from labrador.serve.protocol import error_body

log = logging.getLogger("labrador.serve")

DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_BODY_TIMEOUT = 10.0
DEFAULT_MAX_CONNECTIONS = 128
_RECHECK = 1.0  # seconds: how soon a body deadline is looked at again while the server itself paused reading


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS


class GuardedH11Protocol(H11Protocol):
    """One connection; `limits` is set on the subclass `protocol_class` makes."""

    limits = ConnectionLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._waiting_for: str | None = None  # "head" or "body": what the armed deadline is about
        self._closed_by_us = False
        app = self.app
        self.app = lambda scope, receive, send: self._admit(app, scope, receive, send)

    # -- uvicorn's hooks --------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm("head", self.limits.header_timeout)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow_state()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.conn.their_state is h11.IDLE and self.conn.trailing_data[0]:  # part of a pipelined next head
            self._follow_state()

    def connection_lost(self, exc: Exception | None) -> None:
        answered = self.cycle is not None and self.cycle.response_complete
        if self.conn.their_state is h11.SEND_BODY and not answered and not self._closed_by_us:
            log.info("%s disconnected while sending the body of %s; the request was dropped.", self._who(),
                     self._request())
        self._disarm()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        """A malformed request head (or one over h11's 16 KiB): the JSON error object, like every other error."""
        body = json.dumps(error_body(f"{msg} The request line and headers must be valid HTTP/1.1 and at most "
                                     "16 KiB.", code="invalid_http_request")).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]
        try:
            for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"), h11.Data(data=body),
                          h11.EndOfMessage()):
                self.transport.write(self.conn.send(event))
        except h11.LocalProtocolError:  # a response was already under way: just close
            pass
        self._closed_by_us = True
        self.transport.close()

    # -- deadlines ----------------------------------------------------------------------------------------

    def _follow_state(self) -> None:
        """Arm the deadline that fits what the client is sending now (none once the request is in)."""
        state = self.conn.their_state
        if state is h11.IDLE:
            if self._waiting_for != "head":  # a total deadline: started once per request head
                self._arm("head", self.limits.header_timeout)
        elif state is h11.SEND_BODY:
            self._arm("body", self.limits.body_timeout)  # restarted by every piece of body
        else:
            self._disarm()

    def _arm(self, what: str, seconds: float) -> None:
        self._disarm()
        self._waiting_for = what
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline, self._waiting_for = None, None

    def _expired(self) -> None:
        what, self._deadline = self._waiting_for, None
        if self.transport.is_closing():
            return
        if what == "body" and self.flow.read_paused:  # the app has not read what came: not the client's stall
            self._deadline = self.loop.call_later(_RECHECK, self._expired)
            return
        if what == "head":
            log.debug("Closed the connection from %s: no complete request head within %g s.", self._who(),
                      self.limits.header_timeout)
        else:
            log.info("Closed the connection from %s: the body of %s stalled for %g s.", self._who(),
                     self._request(), self.limits.body_timeout)
        self._closed_by_us = True
        self.transport.close()

    # -- the connection limit -----------------------------------------------------------------------------

    async def _admit(self, app: Any, scope: Any, receive: Any, send: Any) -> None:
        if len(self.connections) <= self.limits.max_connections:
            await app(scope, receive, send)
            return
        log.warning("Refused %s from %s with 503: %d connections are open (limit %d).", self._request(),
                    self._who(), len(self.connections), self.limits.max_connections)
        await refuse(receive, send, 503, f"The server has too many open connections (limit "
                     f"{self.limits.max_connections}); retry in a few seconds.", "too_many_connections",
                     kind="server_error", headers={"Connection": "close", "Retry-After": "5"})

    def _who(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "a client"

    def _request(self) -> str:
        return f"{self.scope['method']} {self.scope['path']}" if self.scope else "a request"


def protocol_class(limits: ConnectionLimits) -> type[GuardedH11Protocol]:
    """The protocol class to give uvicorn (`Config(http=...)`) for these limits."""
    return type("LimitedH11Protocol", (GuardedH11Protocol,), {"limits": limits})
