"""`ilab model train` and `ilab model test` (aliases `ilab train`, `ilab test`). Thin: parse, call, print."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from labrador.cli.model_options import ModelCommand, options_from


def _train_defaults() -> Any:
    from labrador.config import load_config

    return load_config().train


@click.command(cls=ModelCommand, short_help="Tune a student model on generated data (phased, LoRA or full).")
@click.option("--preset", help="Settings preset: a bundled name (cpu-laptop) or a YAML file; its `train:` section "
              "is used.")
@options_from("labrador.train.options:TrainOptions", exclude={"weight_decay"},
              rename={"resume": ["--resume"], "use_cache": ["--no-cache"]})
def train(preset: str | None, **given: Any) -> None:
    """Tune a student model on generated data (LoRA or full, packed, resumable, phased).

    An option not given takes the value of --preset's `train:` section, else config.yaml's `train:` section,
    else the default of `labrador.train.options.TrainOptions` (docs/training.md lists them).
    """
    from labrador.config import layered
    from labrador.presets import load_preset
    from labrador.train.options import TrainOptions

    cfg = _train_defaults()
    from_config = {"model_path": cfg.model, "data_path": cfg.data_path, "ckpt_output_dir": cfg.ckpt_output_dir,
                   **cfg.options()}
    opts = layered(TrainOptions, from_config, load_preset(preset).get("train"), given, source="training options")
    from labrador.train import run

    opts = run.resumed_options(opts)
    run.check_inputs(opts)
    run_dir = Path(opts.ckpt_output_dir).expanduser()
    nproc = _process_count(opts)
    if nproc * opts.nnodes > 1:
        _launch(opts, run_dir, nproc)
    else:
        run.run_training(opts)
    _report(run_dir)


def _process_count(opts: Any) -> int:
    if opts.pipeline != "accelerated":
        return 1
    if opts.nproc_per_node:
        return opts.nproc_per_node
    from labrador.train.distributed import local_gpu_count

    return max(1, local_gpu_count())


def _launch(opts: Any, run_dir: Path, nproc: int) -> None:
    from labrador.errors import LabradorError
    from labrador.train.distributed import launch_torchrun

    run_dir.mkdir(parents=True, exist_ok=True)
    options_file = run_dir / ".torchrun_options.json"
    options_file.write_text(json.dumps(opts.to_dict()), encoding="utf-8")
    code = launch_torchrun(options_file, nproc, opts.nnodes, opts.node_rank, opts.rdzv_endpoint)
    if code != 0:
        raise LabradorError(f"torchrun exited with status {code}; see the messages above (run dir {run_dir}).")


def _report(run_dir: Path) -> None:
    journal_path = run_dir / "run_state.json"
    if not journal_path.is_file():
        return
    for name, phase in json.loads(journal_path.read_text())["phases"].items():
        best = phase.get("best") or {}
        score = f", held-out loss {best['held_out_loss']:.4f}" if "held_out_loss" in best else ""
        dropped = phase.get("dropped_too_long", 0)
        click.echo(f"{name}: {phase['status']}; {phase.get('samples', 0)} samples"
                   f"{f' ({dropped} longer than --max-seq-len dropped)' if dropped else ''}; "
                   f"best checkpoint {best.get('path', '-')}{score}")
    click.echo(f"Run directory: {run_dir} (config.yaml, metrics.jsonl, loss.png)")


@click.command(short_help="Answer the test split with base and trained model side by side.")
@click.option("--data-path", help="test_*.jsonl file or datasets dir (default: config train.data_path).")
@click.option("--model-path", help="Trained checkpoint dir (default: best checkpoint of --ckpt-output-dir).")
@click.option("--base-model", help="Base model (default: config train.model).")
@click.option("--ckpt-output-dir", help="Run directory whose best checkpoint is tested.")
@click.option("--max-new-tokens", type=int, default=128, show_default=True)
@click.option("--limit", type=int, help="Only the first N questions.")
def test(data_path: str | None, model_path: str | None, base_model: str | None, ckpt_output_dir: str | None,
         max_new_tokens: int, limit: int | None) -> None:
    """Answer the test split with the base and the trained model side by side (greedy)."""
    from labrador.train import compare
    from labrador.train.data import find_data_files

    cfg = _train_defaults()
    files = find_data_files(Path(data_path or cfg.data_path).expanduser(), "test")
    questions = compare.read_questions(files, limit)
    trained = Path(model_path) if model_path else \
        compare.best_checkpoint(Path(ckpt_output_dir or cfg.ckpt_output_dir).expanduser())
    base = base_model or cfg.model
    compare.answer_all(base, trained, questions, max_new_tokens)
    for n, answer in enumerate(questions, start=1):
        click.echo(f"[{n}] Q: {answer.question}")
        click.echo(f"    base    ({base}): {answer.base}")
        click.echo(f"    trained ({trained}): {answer.trained}")
        if answer.reference:
            click.echo(f"    expected: {answer.reference}")
        click.echo("")
