"""`ilab data prepare`: a generation run -> the training files (`labrador.prepare`)."""

from __future__ import annotations

from typing import Any

import click


@click.command(short_help="Prepare generated data for training (decontaminate, filter, add anchors).")
@click.argument("dataset_dir", type=click.Path(file_okay=False))
@click.option("--output-dir", type=click.Path(file_okay=False), default=None,
              help="Where the training files go (default: DATASET_DIR/prepared).")
@click.option("--preset", default=None,
              help="Settings preset: a bundled name (cpu-laptop) or a YAML file; its `prepare:` section is used.")
@click.option("--taxonomy-path", type=click.Path(file_okay=False), default=None,
              help="The taxonomy the data was generated from: its seeds are checked and trained on (none: no seed "
                   "rows).")
@click.option("--taxonomy-base", default="origin/main", show_default=True,
              help="Git ref whose changes are the leaves ('empty': every leaf).")
@click.option("--heldout", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Held-out questions (YAML): no training row may contain one.")
@click.option("--general-check", type=click.Path(dir_okay=False, exists=True), default=None,
              help="General-check questions (YAML): no replay prompt may contain one.")
@click.option("--student", default=None,
              help="The model to be trained, which answers the replay prompts (default: config train.model).")
@click.option("--seed", type=int, default=None, help="Seed of the RAFT and replay choices of the phase mixes.")
@click.option("--raft-distractors", type=click.IntRange(0), default=None,
              help="Other chunks shown beside a phase-2 knowledge question (RAFT).")
@click.option("--raft-gold-ratio", type=click.FloatRange(0, 1), default=None,
              help="Share of RAFT samples that include the question's own chunk.")
@click.option("--grounded-only/--no-grounded-only", default=None,
              help="Drop knowledge rows whose answer names things or claims its document does not.")
@click.option("--closed-book/--no-closed-book", default=None,
              help="Also train each grounded knowledge Q&A without its document.")
@click.option("--train-on-seeds/--no-train-on-seeds", default=None,
              help="Add the knowledge leaves' seed Q&A pairs (needs --taxonomy-path).")
@click.option("--self-replay/--no-self-replay", default=None,
              help="Add the student's own answers to general prompts (runs the student).")
@click.option("--replay-prompts", type=click.Path(dir_okay=False, exists=True), default=None,
              help="YAML with a 'prompts:' list (default: the bundled general prompts).")
@click.option("--replay-max-tokens", type=click.IntRange(1), default=None, help="Most tokens per replay answer.")
@click.option("--replay-kl/--no-replay-kl", default=None,
              help="Train replay rows by KL to the starting model (anchors) instead of by their text.")
@click.option("--threads", type=click.IntRange(1), default=None, help="CPU threads of an in-process student.")
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
