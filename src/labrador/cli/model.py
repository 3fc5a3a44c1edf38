"""`ilab model ...`: each subcommand lives in its own module, imported only when it runs."""

from __future__ import annotations

import click

from labrador.cli.lazy import LazyGroup

COMMANDS: dict[str, tuple[str, str]] = {
    "download": ("labrador.cli.model_files:download", "Download a model from Hugging Face or copy a local one."),
    "list": ("labrador.cli.model_files:list_models", "List models on disk and the embedded default."),
    "remove": ("labrador.cli.model_files:remove", "Remove a model from the models directory."),
    "convert": ("labrador.cli.model_convert:convert", "Convert GGUF <-> Hugging Face safetensors."),
    "serve": ("labrador.cli.model_serve:serve", "Serve a model on an OpenAI-compatible HTTP API."),
    "chat": ("labrador.cli.model_chat:chat", "Chat with a model in the terminal (or -qq for one answer)."),
    "train": ("labrador.cli.model_train:train", "Tune a student model on generated data (phased, LoRA or full)."),
    "test": ("labrador.cli.model_train:test", "Answer the test split with base and trained model side by side."),
    "evaluate": ("labrador.cli.model_evaluate:evaluate", "Benchmark a model: mmlu, mmlu_branch, mt_bench, ..."),
}


@click.group(cls=LazyGroup, lazy=COMMANDS)
def model() -> None:
    """Download, list, convert, serve, chat with, train, test and evaluate models."""
