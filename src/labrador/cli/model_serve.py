"""`ilab model serve`: an OpenAI-compatible HTTP server for one model (foreground or --background)."""

from __future__ import annotations

import shlex

import click


@click.command(short_help="Serve a model on an OpenAI-compatible HTTP API.")
@click.option("-m", "--model", "--model-path", "model", default=None,
              help="Model name or path: a GGUF file or a Hugging Face directory (default: config serve.model).")
@click.option("--host", default=None, help="Address to listen on (default: config serve.host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="Port (default: config serve.port, 8000); 0 picks a free port and prints it.")
@click.option("--backend", type=click.Choice(["auto", "llama-cpp", "vllm", "transformers"]), default=None,
              help="auto: GGUF -> llama-cpp; HF directory -> vllm with a GPU, else transformers.")
@click.option("--api-key", envvar="LABRADOR_API_KEY", default=None,
              help="Require 'Authorization: Bearer KEY' on every route (env LABRADOR_API_KEY).")
@click.option("--max-ctx-size", type=click.IntRange(128), default=None,
              help="Context window in tokens (default: config serve.max_ctx_size).")
@click.option("--threads", type=click.IntRange(1), default=None, help="CPU threads for generation.")
@click.option("--chat-template", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Jinja chat template file overriding the model's own.")
@click.option("--backend-args", multiple=True,
              help="Extra flags for the vLLM server, e.g. --backend-args '--tensor-parallel-size 2' (repeatable).")
@click.option("--max-body-mb", type=click.FloatRange(min=0.001), default=8.0, show_default=True,
              help="Refuse request bodies larger than this with 413.")
@click.option("--header-timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds a client has to send a request's line and headers (default: config "
                   "serve.header_timeout, 10); then the connection is closed.")
@click.option("--body-timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds a request body may pause before the connection is closed (default: config "
                   "serve.body_timeout, 10).")
@click.option("--max-connections", type=click.IntRange(1), default=None,
              help="Open connections served at once; requests beyond get 503 (default: config "
                   "serve.max_connections, 128).")
@click.option("--background", is_flag=True,
              help="Start detached, wait until it answers, print its URL and id (see `ilab process`).")
@click.option("--ready-file", type=click.Path(dir_okay=False), hidden=True)
def serve(model: str | None, host: str | None, port: int | None, backend: str | None, api_key: str | None,
          max_ctx_size: int | None, threads: int | None, chat_template: str | None, backend_args: tuple[str, ...],
          max_body_mb: float, header_timeout: float | None, body_timeout: float | None,
          max_connections: int | None, background: bool, ready_file: str | None) -> None:
    """Serve a model on an OpenAI-compatible API: /v1/models, /v1/chat/completions, /v1/completions, /health.

    Stops cleanly on Ctrl+C or SIGTERM.
    """
    import sys
    from pathlib import Path

    from labrador.config import load_config

    cfg = load_config().serve
    extra = [arg for text in (backend_args or cfg.backend_args) for arg in shlex.split(text)]
    host = host or cfg.host
    port = cfg.port if port is None else port
    if background:
        from labrador.serve.background import start_server

        record = start_server(model or cfg.model, host=host, port=port, backend=backend or cfg.backend,
                              api_key=api_key, max_ctx_size=max_ctx_size or cfg.max_ctx_size, threads=threads,
                              chat_template=chat_template, backend_args=tuple(extra),
                              http_flags=_http_flags(max_body_mb, header_timeout, body_timeout, max_connections))
        click.echo(f"Serving {record.model} at {record.url} (id {record.id}, pid {record.pid}, "
                   f"backend {record.backend}). Stop it with `ilab process stop {record.id}`.")
        return

    from labrador.serve.connections import ConnectionLimits
    from labrador.serve.server import Ready, ServeOptions, run_server

    given = {"header_timeout": header_timeout or cfg.header_timeout, "body_timeout": body_timeout or cfg.body_timeout,
             "max_connections": max_connections or cfg.max_connections}
    limits = ConnectionLimits(**{name: value for name, value in given.items() if value is not None})

    options = ServeOptions(model=model or cfg.model, host=host, port=port, backend=backend or cfg.backend,
                           api_key=api_key, max_ctx_size=max_ctx_size or cfg.max_ctx_size, threads=threads,
                           chat_template=Path(chat_template) if chat_template else None, backend_args=extra,
                           max_body_bytes=int(max_body_mb * 1024 * 1024), limits=limits,
                           ready_file=Path(ready_file) if ready_file else None)

    def announce(ready: Ready) -> None:
        click.echo(f"Serving {ready.model} at {ready.url} (backend {ready.backend}, pid {ready.pid}). "
                   "Press Ctrl+C to stop.")
        sys.stdout.flush()

    code = run_server(options, announce)
    click.echo("Server stopped.")
    sys.exit(code)


def _http_flags(max_body_mb: float, header_timeout: float | None, body_timeout: float | None,
                max_connections: int | None) -> tuple[str, ...]:
    """The HTTP limit flags given on the command line, handed on to a --background server."""
    values = {"--max-body-mb": max_body_mb, "--header-timeout": header_timeout, "--body-timeout": body_timeout,
              "--max-connections": max_connections}
    return tuple(f"{flag}={value}" for flag, value in values.items() if value is not None)
