"""`ilab system info`."""

from __future__ import annotations

import click


@click.group()
def system() -> None:
    """Information about this machine and installation."""


@system.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead of text.")
def info(as_json: bool) -> None:
    """Versions, CPU/GPU, torch and llama.cpp availability, and the paths in use."""
    from labrador.sysinfo import collect

    data = collect()
    if as_json:
        import json

        click.echo(json.dumps(data, indent=2))
        return
    for section, values in data.items():
        click.echo(f"{section}:")
        for key, value in values.items():
            click.echo(f"  {key}: {value}")
