"""`ilab data prepare`: a generation run -> the training files (`labrador.prepare`)."""

from __future__ import annotations

from typing import Any

import click

from labrador.cli.model_options import ModelCommand, options_from


@click.command(cls=ModelCommand, short_help="Prepare generated data for training (decontaminate, filter, add anchors).")
@click.argument("dataset_dir", type=click.Path(file_okay=False))
@click.option("--output-dir", type=click.Path(file_okay=False), default=None,
              help="Where the training files go (default: DATASET_DIR/prepared).")
@click.option("--preset", default=None,
              help="Settings preset: a bundled name (cpu-laptop) or a YAML file; its `prepare:` section is used.")
@click.option("--taxonomy-path", type=click.Path(file_okay=False), default=None,
              help="The taxonomy the data was generated from: its seeds are checked and trained on "
                   "(none: no seed rows).")
@click.option("--taxonomy-base", default="origin/main", show_default=True,
              help="Git ref whose changes are the leaves ('empty': every leaf).")
@click.option("--student", default=None,
              help="The model to be trained, which answers the replay prompts (default: config train.model).")
@options_from("labrador.prepare.options:PrepareOptions", exclude={"knowledge_replay_ratio", "student"})
def prepare(dataset_dir: str, output_dir: str | None, preset: str | None, taxonomy_path: str | None,
            taxonomy_base: str, student: str | None, **given: Any) -> None:
    """Prepare the run DATASET_DIR of `ilab data generate` for `ilab model train`: labrador's (its node
    datasets are mixed into the two phases here) or InstructLab's (its knowledge_train_msgs_*.jsonl and
    skills_train_msgs_*.jsonl, mixed already).

    Writes knowledge_train_msgs_decontaminated.jsonl, skills_train_msgs_decontaminated.jsonl and
    prepare_summary.json. An option not given takes the value of --preset's `prepare:` section, else
    PrepareOptions' default.
    """
    from pathlib import Path

    from labrador.config import layered, load_config
    from labrador.files import atomic_write_json
    from labrador.prepare import PrepareOptions
    from labrador.prepare import prepare as run_prepare
    from labrador.prepare.inputs import taxonomy_seeds
    from labrador.presets import load_preset

    source = Path(dataset_dir).expanduser()
    options = layered(PrepareOptions, load_preset(preset).get("prepare"),
                      {**given, "student": student or load_config().train.model}, source="preparation options")
    leaves = taxonomy_seeds(Path(taxonomy_path).expanduser(), taxonomy_base) if taxonomy_path else []
    out_dir = Path(output_dir).expanduser() if output_dir else source / "prepared"
    result = run_prepare(source, leaves, options, out_dir)
    atomic_write_json(out_dir / "prepare_summary.json", result, indent=2, default=str)
    for kind in ("knowledge", "skills"):
        click.echo(f"{kind}: {result[f'{kind}_generated']} generated rows -> {result[f'{kind}_rows']} training rows "
                   f"in {result['files'][kind]}")
    removed = len(result["removed"])
    click.echo(f"Removed {removed} row(s) holding a held-out question"
               + ("." if options.heldout else " (no --heldout given)."))
    if not leaves:
        click.echo("No --taxonomy-path: no seed checks and no seed rows.")
