"""`ilab data ...`."""

from __future__ import annotations

import click

from labrador.cli.lazy import LazyGroup

COMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("labrador.cli.data_generate:generate", "Generate synthetic training data with a teacher model."),
    "list": ("labrador.cli.data_generate:list_runs", "List generated datasets with row counts."),
}


@click.group(cls=LazyGroup, lazy=COMMANDS)
def data() -> None:
    """Generate and list synthetic training data."""
