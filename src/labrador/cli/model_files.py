"""`ilab model list | download | remove`: the models directory. Thin: the work is in labrador.models.store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


def _models_dir(option: str | None) -> Path:
    if option:
        return Path(option).expanduser()
    from labrador.config import load_config

    return Path(load_config().models.models_dir).expanduser()


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _params(n: int | None) -> str:
    if not n:
        return "-"
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.1f}M"


models_dir_option = click.option("--models-dir", default=None, type=click.Path(file_okay=False),
                                 help="Models directory (default: config models.models_dir).")


@click.command(name="list", short_help="List models on disk and the embedded default.")
@models_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def list_models(models_dir: str | None, as_json: bool) -> None:
    """List the embedded default and the models in the models directory.

    Format, size, architecture, parameter count, quantization and context length are read from each file
    (GGUF metadata, or config.json and safetensors headers). Unreadable files are listed with the reason.
    """
    from labrador.models.store import list_models as entries_of

    directory = _models_dir(models_dir)
    entries = entries_of(directory)
    if as_json:
        import json
        from dataclasses import asdict

        rows: list[dict[str, Any]] = []
        for e in entries:
            row: dict[str, Any] = {"name": e.name, "path": str(e.path), "embedded": e.embedded, "problem": e.problem}
            if e.info:  # every ModelInfo field but the name and path the row starts with
                row.update({k: v for k, v in asdict(e.info).items() if k not in ("name", "path")})
            rows.append(row)
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=200)  # pipes and logs: never wrap rows
    table = Table(title=f"Models (models directory: {directory})", title_justify="left")
    for column in ("NAME", "FORMAT", "SIZE", "ARCH", "PARAMS", "QUANT", "CTX", "PATH"):
        table.add_column(column, overflow="fold")
    for e in entries:
        name = e.name + (" (default)" if e.embedded else "")
        if e.info is None:
            table.add_row(name, "?", "-", "-", "-", "-", "-", f"unreadable: {e.problem}")
            continue
        i = e.info
        table.add_row(name, i.format, _size(i.size_bytes), i.architecture or "-", _params(i.parameters),
                      i.quantization or "-", str(i.context_length or "-"), str(e.path))
    console.print(table)


@click.command(short_help="Download a model from Hugging Face or copy a local one.")
@click.argument("repo_id", required=False)
@click.option("--revision", default=None, help="Branch, tag or commit of the repository (default: main).")
@click.option("--filename", default=None, help="Download only this file (e.g. a .gguf) instead of the whole repo.")
@click.option("--hf-token", envvar="HF_TOKEN", default=None, help="Hugging Face token (env HF_TOKEN).")
@click.option("--local-path", default=None, type=click.Path(),
              help="Copy this model file or directory into the models directory instead of downloading.")
@models_dir_option
def download(repo_id: str | None, revision: str | None, filename: str | None, hf_token: str | None,
             local_path: str | None, models_dir: str | None) -> None:
    """Download REPO_ID from Hugging Face into the models directory, or copy a local model there.

    With --local-path, REPO_ID (optional) is the name to give the copy.
    """
    from labrador.errors import LabradorError
    from labrador.models import store

    directory = _models_dir(models_dir)
    if local_path:
        target = store.copy_local(Path(local_path), directory, repo_id)
    elif not repo_id:
        raise LabradorError("Give a Hugging Face repository id (e.g. ibm-granite/granite-7b-lab-GGUF) or "
                            "--local-path PATH.")
    else:
        target = store.download_from_hub(repo_id, directory, revision=revision, filename=filename, token=hf_token)
    click.echo(f"Saved {target}")


@click.command(short_help="Remove a model from the models directory.")
@click.argument("name")
@models_dir_option
def remove(name: str, models_dir: str | None) -> None:
    """Remove the model NAME (as shown by `ilab model list`) from the models directory."""
    from labrador.models.store import remove_model

    path = remove_model(name, _models_dir(models_dir))
    click.echo(f"Removed {path}")

