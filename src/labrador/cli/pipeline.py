"""`ilab pipeline run`: the whole method in one command. Thin: parse, call labrador.pipeline, print."""

from __future__ import annotations

import click

STAGES = ("validate", "generate", "prepare_data", "train_knowledge", "train_skills", "convert", "evaluate_base",
          "evaluate_tuned")


@click.group()
def pipeline() -> None:
    """Run the whole method: diff/validate, generate, train, convert, evaluate."""


@pipeline.command()
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
              help="Document chunk size in tokens for generation (default: 300).")
@click.option("--train-pipeline", type=click.Choice(["simple", "full"]), default=None,
              help="simple = LoRA, full = every weight (default: simple).")
@click.option("--knowledge-epochs", type=click.IntRange(1), default=None)
@click.option("--knowledge-lr", type=float, default=None)
@click.option("--skills-epochs", type=click.IntRange(1), default=None)
@click.option("--skills-lr", type=float, default=None)
@click.option("--max-seq-len", type=click.IntRange(32), default=None)
@click.option("--batch-size", type=click.IntRange(1), default=None,
              help="Samples per optimizer step in both training phases (default: 2).")
@click.option("--threads", type=click.IntRange(1), default=None, help="CPU threads for in-process models.")
@click.option("--seed", type=int, default=None,
              help="Seed of the teacher's sampling and of training (default: 42); another seed measures the spread.")
@click.option("--force", multiple=True, type=click.Choice(("all", *STAGES)),
              help="Redo a stage even when it is up to date (repeatable; 'all' redoes everything).")
@click.option("--stop-after", type=click.Choice(STAGES), default=None, help="End the run after this stage.")
@click.option("--no-judge", is_flag=True, help="Skip the judge; report key-facts scores only.")
@click.option("--self-replay/--no-self-replay", default=True, show_default=True,
              help="Mix the base student's own answers to general prompts into training (against forgetting).")
@click.option("--replay-prompts", type=click.Path(dir_okay=False, exists=True), default=None,
              help="YAML 'prompts:' list for self-replay (default: the bundled general prompts).")
@click.option("--replay-kl/--no-replay-kl", default=True, show_default=True,
              help="Train self-replay rows as anchors (KL to the phase's starting model) rather than as text.")
@click.option("--anchor-weight", type=click.FloatRange(0, min_open=True), default=None,
              help="Weight of the anchors' KL against the other rows' cross-entropy (default: 1).")
def run(taxonomy_path: str | None, taxonomy_base: str | None, run_dir: str | None, student: str | None,
        teacher: str | None, judge: str | None, heldout: str | None, general_check: str | None, scale: int | None,
        chunk_size: int | None, train_pipeline: str | None, knowledge_epochs: int | None,
        knowledge_lr: float | None, skills_epochs: int | None, skills_lr: float | None, max_seq_len: int | None,
        batch_size: int | None, threads: int | None, seed: int | None,
        force: tuple[str, ...], stop_after: str | None, no_judge: bool, self_replay: bool,
        replay_prompts: str | None, replay_kl: bool, anchor_weight: float | None) -> None:
    """For a taxonomy and a student: validate the changed leaves, generate data with the teacher, train (knowledge
    phase, then skills phase), convert to GGUF, and evaluate base and tuned models. Stages whose inputs did not
    change are reused, so re-running after a crash or an edit redoes only what is needed."""
    from pathlib import Path

    from labrador import paths
    from labrador.config import load_config
    from labrador.pipeline.runner import run_pipeline
    from labrador.pipeline.settings import PipelineSettings

    cfg = load_config()
    settings = PipelineSettings(
        taxonomy_path=Path(taxonomy_path or cfg.generate.taxonomy_path).expanduser(),
        run_dir=Path(run_dir).expanduser() if run_dir else paths.data_subdir("runs") / "pipeline",
        taxonomy_base=taxonomy_base or cfg.generate.taxonomy_base, student=student or cfg.train.model,
        teacher=teacher or cfg.generate.teacher, judge=judge,
        heldout=Path(heldout) if heldout else None, general_check=Path(general_check) if general_check else None,
        force=list(force), skip_judge=no_judge, self_replay=self_replay, replay_kl=replay_kl,
        replay_prompts=Path(replay_prompts) if replay_prompts else None)
    overrides = {"scale_factor": scale, "chunk_size": chunk_size, "train_pipeline": train_pipeline,
                 "knowledge_epochs": knowledge_epochs, "knowledge_lr": knowledge_lr, "skills_epochs": skills_epochs,
                 "seed": seed,
                 "skills_lr": skills_lr, "max_seq_len": max_seq_len, "effective_batch_size": batch_size,
                 "threads": threads, "anchor_weight": anchor_weight}
    for key, value in overrides.items():
        if value is not None:
            setattr(settings, key, value)
    result = run_pipeline(settings, log=lambda line: click.echo(line, err=True), stop_after=stop_after)
    click.echo(f"Report: {result.report}")
    if result.gguf:
        click.echo(f"New model: {result.gguf}")
        click.echo(f'Chat with it: ilab model chat --model {result.gguf}')
    elif result.checkpoint:
        click.echo(f"New model (Hugging Face checkpoint): {result.checkpoint}")
