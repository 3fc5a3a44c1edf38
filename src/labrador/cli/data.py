"""`ilab data ...`."""

from __future__ import annotations

import click

from labrador.cli.data_generate import generate, list_runs
from labrador.cli.data_prepare import prepare


@click.group(commands={"generate": generate, "list": list_runs, "prepare": prepare})
def data() -> None:
    """Generate, list and prepare synthetic training data."""
