"""`ilab pipeline run`: the whole method in one command. Thin: parse, call labrador.pipeline, print."""

from __future__ import annotations

from typing import Any

import click

STAGES = ("validate", "generate", "prepare_data", "train_knowledge", "train_skills", "convert", "evaluate_base",
          "evaluate_tuned")


@click.group()
def pipeline() -> None:
    """Run the whole method: diff/validate, generate, train, convert, evaluate."""


@pipeline.command()
@click.option("--preset", default="cpu-laptop", show_default=True,
              help="Settings preset: a bundled name, a YAML file, or 'none' (the models' own defaults).")
@click.option("--taxonomy-path", type=click.Path(file_okay=False), default=None,
              help="Taxonomy checkout (default: config generate.taxonomy_path).")
@click.option("--taxonomy-base", default=None, help="Git ref to diff against; 'empty' uses every leaf "
              "(default: config generate.taxonomy_base).")
@click.option("--run-dir", type=click.Path(file_okay=False), default=None,
              help="Where stamps, data, checkpoints, the model and report.md go (default: <data dir>/runs/pipeline).")
@click.option("--student", "--model-path", "student", default=None, help="Student model (default: config train.model).")
@click.option("--teacher", default=None, help="Teacher model for generation (default: config generate.teacher).")
@click.option("--judge", default=None, help="Judge model for the held-out answers (default: the teacher).")
@click.option("--heldout", type=click.Path(dir_okay=False, exists=True), default=None,
              help="YAML of held-out questions with key_facts about the changed knowledge (see docs/demo.md).")
@click.option("--general-check", type=click.Path(dir_okay=False, exists=True), default=None,
              help="YAML of general questions whose score should not drop.")
@click.option("--sdg-scale-factor", "scale", type=click.IntRange(1), default=None, help="Teacher samples per seed.")
@click.option("--chunk-size", type=click.IntRange(16), default=None,
              help="Document chunk size in tokens for generation.")
@click.option("--train-pipeline", type=click.Choice(["simple", "full"]), default=None,
              help="simple = LoRA, full = every weight.")
@click.option("--knowledge-epochs", type=click.IntRange(1), default=None)
@click.option("--knowledge-lr", type=float, default=None)
@click.option("--skills-epochs", type=click.IntRange(1), default=None)
@click.option("--skills-lr", type=float, default=None)
@click.option("--max-seq-len", type=click.IntRange(32), default=None)
@click.option("--batch-size", type=click.IntRange(1), default=None,
              help="Samples per optimizer step in both training phases.")
@click.option("--threads", type=click.IntRange(1), default=None, help="CPU threads for in-process models.")
@click.option("--seed", type=int, default=None,
              help="Seed of the teacher's sampling and of training; another seed measures the spread.")
@click.option("--force", multiple=True, type=click.Choice(("all", *STAGES)),
              help="Redo a stage even when it is up to date (repeatable; 'all' redoes everything).")
@click.option("--stop-after", type=click.Choice(STAGES), default=None, help="End the run after this stage.")
@click.option("--no-judge", is_flag=True, default=None, help="Skip the judge; report key-facts scores only.")
@click.option("--self-replay/--no-self-replay", default=None,
              help="Mix the base student's own answers to general prompts into training (against forgetting).")
@click.option("--replay-prompts", type=click.Path(dir_okay=False, exists=True), default=None,
              help="YAML 'prompts:' list for self-replay (default: the bundled general prompts).")
@click.option("--replay-kl/--no-replay-kl", default=None,
              help="Train self-replay rows as anchors (KL to the phase's starting model) rather than as text.")
@click.option("--anchor-weight", type=click.FloatRange(0, min_open=True), default=None,
              help="Weight of the anchors' KL against the other rows' cross-entropy.")
def run(preset: str, stop_after: str | None, **given: Any) -> None:
    """For a taxonomy and a student: validate the changed leaves, generate data with the teacher, train (knowledge
    phase, then skills phase), convert to GGUF, and evaluate base and tuned models. Stages whose inputs did not
    change are reused, so re-running after a crash or an edit redoes only what is needed.

    An option not given takes the preset's value, else config.yaml's (generate: and train: sections), else the
    default of the settings models (docs/training.md)."""
    from labrador.config import layered, load_config
    from labrador.pipeline.runner import run_pipeline
    from labrador.pipeline.settings import PipelineSettings
    from labrador.presets import load_preset

    cfg = load_config()
    from_config = {"taxonomy_path": cfg.generate.taxonomy_path, "taxonomy_base": cfg.generate.taxonomy_base,
                   "student": cfg.train.model, "teacher": cfg.generate.teacher,
                   "generate": cfg.generate.options(), "train": cfg.train.options()}
    settings = layered(PipelineSettings, from_config, load_preset(preset), _from_options(given),
                       source="pipeline settings")
    result = run_pipeline(settings, log=lambda line: click.echo(line, err=True), stop_after=stop_after)
    click.echo(f"Report: {result.report}")
    if result.gguf:
        click.echo(f"New model: {result.gguf}")
        click.echo(f'Chat with it: ilab model chat --model {result.gguf}')
    elif result.checkpoint:
        click.echo(f"New model (Hugging Face checkpoint): {result.checkpoint}")


def _from_options(given: dict[str, Any]) -> dict[str, Any]:
    """The command-line options as (nested) PipelineSettings values; None: not given."""
    from pathlib import Path

    from labrador import paths

    def path(value: str | None) -> Path | None:
        return Path(value).expanduser() if value else None

    g = given
    return {"taxonomy_path": path(g["taxonomy_path"]), "taxonomy_base": g["taxonomy_base"],
            "run_dir": path(g["run_dir"]) or paths.data_subdir("runs") / "pipeline", "student": g["student"],
            "teacher": g["teacher"], "judge": g["judge"], "heldout": path(g["heldout"]),
            "general_check": path(g["general_check"]), "threads": g["threads"], "force": list(g["force"]) or None,
            "skip_judge": g["no_judge"],
            "generate": {"scale_factor": g["scale"], "chunk_size": g["chunk_size"], "seed": g["seed"]},
            "prepare": {"seed": g["seed"], "self_replay": g["self_replay"], "replay_prompts": path(g["replay_prompts"]),
                        "replay_kl": g["replay_kl"]},
            "train": {"pipeline": g["train_pipeline"], "max_seq_len": g["max_seq_len"],
                      "effective_batch_size": g["batch_size"], "seed": g["seed"], "anchor_weight": g["anchor_weight"]},
            "knowledge": {"num_epochs": g["knowledge_epochs"], "learning_rate": g["knowledge_lr"]},
            "skills": {"num_epochs": g["skills_epochs"], "learning_rate": g["skills_lr"]}}
