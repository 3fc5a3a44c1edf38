"""Run a model server in the foreground: pick the backend, bind, serve until SIGINT/SIGTERM, exit 0.

We bind the socket ourselves (so `--port 0` can report the port the kernel picked) and handle the signals
ourselves: uvicorn's own handlers re-raise the signal after shutdown, which would turn a clean stop into
exit status 130/143.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labrador.errors import LabradorError
from labrador.files import atomic_write_json
from labrador.serve.app import DEFAULT_MAX_BODY_BYTES, create_app
from labrador.serve.connections import ConnectionLimits, protocol_class
from labrador.serve.engine import ServedModel


@dataclass
class ServeOptions:
    model: str
    host: str = "127.0.0.1"
    port: int = 8000
    backend: str = "auto"
    api_key: str | None = None
    max_ctx_size: int = 4096
    threads: int | None = None
    chat_template: Path | None = None
    backend_args: list[str] = field(default_factory=list)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    ready_file: Path | None = None


@dataclass
class Ready:
    """What a started server reports (printed, and written to --ready-file for `--background`)."""

    url: str
    host: str
    port: int
    model: str
    backend: str
    pid: int = field(default_factory=os.getpid)


def load_model(path: Path, name: str, kind: str, options: ServeOptions) -> ServedModel:
    """The in-process client (llama-cpp or transformers) behind the routes."""
    from labrador.llm import get_client

    client = get_client(str(path), backend=kind, model_name=name, n_ctx=options.max_ctx_size,
                        n_threads=options.threads,
                        chat_template=str(options.chat_template) if options.chat_template else None)
    return ServedModel(client, name)


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise LabradorError(f"Cannot listen on {host}:{port} ({err.strerror or err}); choose another --port "
                            "(0 picks a free one) or stop the server using it (`ilab process list`).") from None
    sock.listen(2048)
    return sock


def base_url(host: str, port: int) -> str:
    """The URL a local client connects to (loopback when the server listens on every interface)."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return f"http://[{host}]:{port}/v1" if ":" in host else f"http://{host}:{port}/v1"


def _announcer(options: ServeOptions, port: int, name: str, backend: str,
               on_ready: Callable[[Ready], None]) -> Callable[[], None]:
    """Write --ready-file (when given), then tell the caller that the server on `port` answers."""
    ready = Ready(url=base_url(options.host, port), host=options.host, port=port, model=name, backend=backend)

    def announce() -> None:
        if options.ready_file:
            atomic_write_json(options.ready_file, ready.__dict__)
        on_ready(ready)

    return announce


def _uvicorn_server(app: Any, limits: ConnectionLimits) -> Any:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn without its signal handling (we install ours on the loop)."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    # Our h11 protocol adds the header and body timeouts and the connection limit (serve/connections.py);
    # no websockets: no route uses them.
    config = uvicorn.Config(app, http=protocol_class(limits), ws="none", log_level="warning", access_log=False,
                            lifespan="off", timeout_graceful_shutdown=10, timeout_keep_alive=30)
    return Server(config)


async def _serve(server: Any, sock: socket.socket, backend: ServedModel, on_ready: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()

    def stop() -> None:
        if server.should_exit:  # a second Ctrl+C: do not wait for open requests
            server.force_exit = True
        server.should_exit = True
        # Running and queued generations end at their next token and answer 503, so that open connections
        # close within a second instead of holding the shutdown for a whole answer.
        backend.begin_shutdown()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not task.done():
        await asyncio.sleep(0.01)
    if server.started:
        on_ready()
    await task


def run_server(options: ServeOptions, on_ready: Callable[[Ready], None]) -> int:
    """Load the model, serve it until SIGINT/SIGTERM; returns the exit status (0 on a clean stop)."""
    from labrador.llm.factory import choose_backend, resolve

    resolved = resolve(options.model)
    path, name = resolved.path, resolved.name
    kind = choose_backend(resolved.format, path, options.backend)
    if kind == "vllm":
        return _run_vllm(path, name, options, on_ready)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
        logging.getLogger("labrador.serve").setLevel(logging.INFO)  # client disconnects and stalls: one line each
    sock = bind_socket(options.host, options.port)  # before loading: a busy port fails at once
    try:
        backend = load_model(path, name, kind, options)
    except BaseException:
        sock.close()
        raise
    try:
        port = sock.getsockname()[1]
        server = _uvicorn_server(create_app(backend, api_key=options.api_key,
                                            max_body_bytes=options.max_body_bytes), options.limits)
        asyncio.run(_serve(server, sock, backend, _announcer(options, port, name, kind, on_ready)))
    finally:
        backend.close()
    return 0


def _run_vllm(path: Path, name: str, options: ServeOptions, on_ready: Callable[[Ready], None]) -> int:
    from labrador.llm.vllm import build_vllm_command, run_vllm

    port = options.port
    if port == 0:  # vLLM cannot report a kernel-chosen port: pick a free one now (tiny race, documented)
        with contextlib.closing(bind_socket(options.host, 0)) as probe:
            port = probe.getsockname()[1]
    command = build_vllm_command(path, host=options.host, port=port, served_name=name,
                                 max_ctx_size=options.max_ctx_size, api_key=options.api_key,
                                 chat_template=options.chat_template, backend_args=options.backend_args)
    # vLLM takes minutes to load; background callers poll /health before using it.
    return run_vllm(command, on_start=_announcer(options, port, name, "vllm", on_ready))
