"""`ilab process list|stop`: background servers started with `ilab model serve --background`."""

from __future__ import annotations

import click


@click.group()
def process() -> None:
    """List and stop background servers."""


def _uptime(started: str) -> str:
    from datetime import UTC, datetime

    try:
        seconds = int((datetime.now(UTC) - datetime.fromisoformat(started)).total_seconds())
    except ValueError:
        return "?"
    hours, rest = divmod(max(seconds, 0), 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


@process.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")
def list_command(as_json: bool) -> None:
    """Show running background processes (records of exited ones are removed)."""
    import json
    from dataclasses import asdict

    from labrador.serve.background import list_processes

    records = list_processes()
    if as_json:
        click.echo(json.dumps([asdict(r) for r in records], indent=2))
        return
    if not records:
        click.echo("No background processes are running.")
        return
    rows = [("ID", "PID", "KIND", "MODEL", "URL", "UPTIME")]
    rows += [(r.id, str(r.pid), r.kind, r.model, r.url, _uptime(r.started)) for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@process.command()
@click.argument("ids", nargs=-1)
@click.option("--all", "stop_all", is_flag=True, help="Stop every background process.")
@click.option("--grace", type=click.FloatRange(0), default=10.0, show_default=True,
              help="Seconds to wait after SIGTERM before SIGKILL.")
def stop(ids: tuple[str, ...], stop_all: bool, grace: float) -> None:
    """Stop background processes by ID (or pid): SIGTERM, then SIGKILL after the grace period."""
    from labrador.errors import LabradorError
    from labrador.serve.background import find_process, list_processes, stop_process

    if not ids and not stop_all:
        raise LabradorError("Name the processes to stop (`ilab process stop ID`) or pass --all; "
                            "`ilab process list` shows the ids.")
    records = list_processes() if stop_all else [find_process(key) for key in ids]
    if not records:
        click.echo("No background processes are running.")
    for record in records:
        stop_process(record, grace)
        click.echo(f"Stopped {record.id} (pid {record.pid}, {record.model}).")
