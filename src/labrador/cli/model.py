"""`ilab model ...`: each subcommand lives in its own module; its heavy imports wait until it runs."""

from __future__ import annotations

import click

from labrador.cli.model_chat import chat
from labrador.cli.model_convert import convert
from labrador.cli.model_evaluate import evaluate
from labrador.cli.model_files import download, list_models, remove
from labrador.cli.model_serve import serve
from labrador.cli.model_train import test, train


@click.group(commands=[download, list_models, remove, convert, serve, chat, train, test, evaluate])
def model() -> None:
    """Download, list, convert, serve, chat with, train, test and evaluate models."""
