"""`ilab model convert`: GGUF -> Hugging Face directory, or Hugging Face directory -> GGUF."""

from __future__ import annotations

import time
from pathlib import Path

import click

from labrador.errors import ModelError

# Kept here (not imported from labrador.models.convert) so `--help` stays free of heavy imports.
OUTTYPES = ("f16", "f32", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k_s", "q3_k_m", "q3_k_l",
            "q4_k_s", "q4_k_m", "q5_k_s", "q5_k_m", "q6_k")


def _direction(source: Path, to: str | None) -> str:
    if not source.exists():
        raise ModelError(f"{source} does not exist; pass a .gguf file or a Hugging Face model directory.")
    if source.is_file():
        inferred = "hf" if source.suffix.lower() == ".gguf" else None
        if inferred is None:
            raise ModelError(f"{source} is a file but not a .gguf; pass a .gguf file or a model directory.")
    elif (source / "config.json").is_file():
        from labrador.models.convert_hf_gguf import read_config

        read_config(source)  # unsupported architecture: say so before any progress bar appears
        inferred = "gguf"
    else:
        raise ModelError(f"{source} is a directory without config.json, so it is not a Hugging Face model "
                         "directory; pass the directory that holds config.json and the safetensors files.")
    if to is not None and to != inferred:
        raise ModelError(f"--to {to} does not fit {source}: a {'GGUF file' if inferred == 'hf' else 'HF directory'} "
                         f"converts to {inferred}.")
    return inferred


def _size(path: Path) -> str:
    total = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size
    return f"{total / 1e6:.1f} MB"


@click.command(short_help="Convert GGUF <-> Hugging Face safetensors.")
@click.option("--model-dir", "--model", "-m", "model", required=True, type=click.Path(path_type=Path),
              help="A .gguf file (converted to a Hugging Face directory) or a Hugging Face directory (to GGUF).")
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None,
              help="Output path (default: in the current directory, NAME-hf/ or NAME-OUTTYPE.gguf).")
@click.option("--to", type=click.Choice(["gguf", "hf"]), default=None,
              help="Target format; inferred from the input when left out.")
@click.option("--outtype", type=click.Choice(OUTTYPES, case_sensitive=False), default="f16", show_default=True,
              help="GGUF tensor type. q4_*/q5_*/k-quants are made by llama.cpp's quantizer from an f16 file.")
@click.option("--dtype", type=click.Choice(["float32", "bfloat16", "float16"]), default="float32",
              show_default=True, help="Weight dtype of the Hugging Face output (GGUF -> HF).")
@click.option("--pre-tokenizer", default=None,
              help="llama.cpp pre-tokenizer name (tokenizer.ggml.pre) when it cannot be recognised.")
@click.option("--force", is_flag=True, help="Replace the output if it exists.")
def convert(model: Path, output: Path | None, to: str | None, outtype: str, dtype: str,
            pre_tokenizer: str | None, force: bool) -> None:
    """Convert a model between GGUF (llama.cpp) and Hugging Face safetensors (transformers, training)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from labrador.models.convert import default_output, gguf_to_hf, hf_to_gguf

    direction = _direction(model, to)
    outtype = outtype.lower()
    target = output or default_output(model, outtype)
    console = Console(stderr=True)
    start = time.monotonic()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("reading", total=None)

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=total)

        if direction == "hf":
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # our own bar shows the stages
            hf_logging.set_verbosity_error()
            result = gguf_to_hf(model, target, dtype=dtype, force=force, progress=progress)
        else:
            result = hf_to_gguf(model, target, outtype=outtype, pre_tokenizer=pre_tokenizer, force=force,
                                progress=progress)
    click.echo(f"Wrote {result} ({_size(result)}) in {time.monotonic() - start:.1f} s")
