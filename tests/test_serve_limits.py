"""`ilab model serve` against slow, vanishing and too many clients: real sockets to a real server on 127.0.0.1.

One server per module, started as a user would (`ilab model serve --port 0`, the embedded model) with the
default limits of docs/serve_chat.md, so these tests also prove the documented figures: a request head
within 10 s, no pause over 10 s inside a body, 128 connections. Its stderr is read by a thread, so the tests
can look at the log lines a client caused.
"""

from __future__ import annotations

import json
import select
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from test_serve import ILAB, isolated_env, read_line

pytestmark = pytest.mark.slow

HEADER_TIMEOUT, BODY_TIMEOUT, MAX_CONNECTIONS = 10.0, 10.0, 128  # as documented
MARGIN = 5.0  # a loaded 2-core machine: the event loop may be late by a few seconds
HALF_HEAD = b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


@dataclass
class Server:
    process: subprocess.Popen[str]
    port: int
    log: list[str] = field(default_factory=list)

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connect(self, data: bytes = b"") -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        if data:
            sock.sendall(data)
        return sock

    def wait_for_log(self, start: int, text: str, seconds: float = 10.0) -> list[str]:
        """The log lines from line `start` on, once one of them holds `text`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if any(text in line for line in self.log[start:]):
                time.sleep(0.5)  # anything else the same event logs
                return self.log[start:]
            time.sleep(0.05)
        pytest.fail(f"no log line with {text!r}: {self.log[start:]}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    process = subprocess.Popen([ILAB, "model", "serve", "--port", "0", "--threads", "1"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               env=isolated_env(tmp_path_factory.mktemp("limits-home")))
    line = read_line(process.stdout, 120)
    if " at http://" not in line:
        process.kill()
        pytest.fail(f"the server did not start: {line!r} {process.stderr.read()}")
    running = Server(process, int(line.split(" at http://127.0.0.1:", 1)[1].split("/", 1)[0]))
    reader = threading.Thread(target=lambda: running.log.extend(iter(process.stderr.readline, "")), daemon=True)
    reader.start()
    yield running
    process.terminate()
    process.wait(timeout=60)
    reader.join(timeout=10)
    assert not [line for line in running.log if "Traceback" in line or line.startswith("ERROR")], running.log


def closed_at(sock: socket.socket, deadline: float) -> float | None:
    """When the server closed `sock` (EOF or reset), waiting until `deadline`; None if it is still open."""
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([sock], [], [], left)
        if ready:
            try:
                if sock.recv(65536) == b"":
                    return time.monotonic()
            except OSError:
                return time.monotonic()
    return None


def drip(sock: socket.socket, seconds: float) -> float | None:
    """Send one byte of a request head every half second until the server closes the socket."""
    deadline = time.monotonic() + seconds
    for byte in (HALF_HEAD * 100)[:200]:
        if (when := closed_at(sock, min(time.monotonic() + 0.5, deadline))) is not None:
            return when
        try:
            sock.send(bytes([byte]))
        except OSError:
            return time.monotonic()
    return None


def ask(server: Server) -> httpx.Response:
    return httpx.post(server.root + "/v1/chat/completions", timeout=120,
                      json={"messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 4})


def test_half_open_connections_are_closed_and_do_not_starve_the_server(server: Server) -> None:
    """50 half-open sockets (25 silent, 25 with half a request head), one dripping its head a byte at a time
    and one whose body stalls: a normal request is answered meanwhile, and the server closes each of them
    within its timeout (and not before: it is the timeout that closes them)."""
    opened = time.monotonic()
    half_open = [server.connect(HALF_HEAD if i % 2 else b"") for i in range(50)]
    stalled = server.connect(HALF_HEAD + b"Content-Length: 100\r\n\r\n" + b'{"messages": [')
    stalled_at, stalled_port = time.monotonic(), stalled.getsockname()[1]
    dripping = server.connect()
    dripped: list[float | None] = []
    dripper = threading.Thread(target=lambda: dripped.append(drip(dripping, HEADER_TIMEOUT + MARGIN)))
    dripper.start()
    start = len(server.log)
    try:
        assert httpx.get(server.root + "/health", timeout=10).json()["status"] == "ok"
        answer = ask(server)
        assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"]
        closed = [closed_at(sock, opened + HEADER_TIMEOUT + MARGIN) for sock in half_open]
        stall_closed = closed_at(stalled, stalled_at + BODY_TIMEOUT + MARGIN)
        dripper.join()
    finally:
        for sock in [*half_open, stalled, dripping]:
            sock.close()
    assert all(when is not None for when in closed), f"{closed.count(None)} of 50 half-open sockets still open"
    assert min(closed) - opened >= HEADER_TIMEOUT - 0.5  # type: ignore[type-var, operator]
    assert dripped[0] is not None and dripped[0] - opened >= HEADER_TIMEOUT - 0.5, "the dripping head stayed open"
    assert stall_closed is not None and stall_closed - stalled_at >= BODY_TIMEOUT - 0.5
    lines = server.wait_for_log(start, "stalled")
    assert [line for line in lines if "labrador.serve" in line] == [
        f"INFO labrador.serve: Closed the connection from 127.0.0.1:{stalled_port}: the body of "
        "POST /v1/chat/completions stalled for 10 s.\n"]  # one line; silent and half heads are DEBUG


def test_client_gone_mid_body_is_one_info_line(server: Server) -> None:
    for hard in (False, True):  # a clean close (FIN) and a reset (RST)
        start = len(server.log)
        sock = server.connect(HALF_HEAD + b"Content-Length: 1000\r\n\r\n" + b'{"messages": [')
        port = sock.getsockname()[1]
        time.sleep(0.5)  # the server has the head and waits for the body
        if hard:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()
        lines = server.wait_for_log(start, "disconnected")
        assert lines == [f"INFO labrador.serve: 127.0.0.1:{port} disconnected while sending the body of "
                         "POST /v1/chat/completions; the request was dropped.\n"]
    assert ask(server).status_code == 200


def test_connections_over_the_limit_get_503_as_json(server: Server) -> None:
    idle = [server.connect() for _ in range(MAX_CONNECTIONS)]
    try:
        deadline = time.monotonic() + 10
        while (refused := ask(server)).status_code != 503 and time.monotonic() < deadline:
            time.sleep(0.2)  # until the server has accepted all of them
        assert refused.status_code == 503
        assert refused.headers["connection"] == "close" and refused.headers["retry-after"] == "5"
        assert refused.json()["error"] == {
            "message": f"The server has too many open connections (limit {MAX_CONNECTIONS}); retry in a few "
                       "seconds.", "type": "server_error", "param": None, "code": "too_many_connections"}
        for sock in idle[:5]:
            sock.close()
        deadline = time.monotonic() + 10
        while (answer := ask(server)).status_code == 503 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert answer.status_code == 200
    finally:
        for sock in idle:
            sock.close()
    assert any("with 503" in line and line.startswith("WARNING") for line in server.log)


def test_malformed_or_huge_request_heads_get_400_as_json(server: Server) -> None:
    for head in (b"NOT HTTP AT ALL\r\n\r\n", b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000):
        with server.connect(head) as sock:
            sock.settimeout(10)
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        status, _, body = reply.partition(b"\r\n\r\n")
        assert status.startswith(b"HTTP/1.1 400 ")
        assert json.loads(body)["error"]["code"] == "invalid_http_request"

