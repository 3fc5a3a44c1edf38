"""`ilab data generate` (alias `ilab generate`) and `ilab data list`."""

from __future__ import annotations

from typing import Any

import click

from labrador.cli.model_options import ModelCommand, options_from
from labrador.cli.taxonomy import taxonomy_options


@click.command(cls=ModelCommand, short_help="Generate synthetic training data with a teacher model.")
@click.option("--preset", default=None,
              help="Settings preset: a bundled name (cpu-laptop) or a YAML file; its `generate:` section is used.")
@taxonomy_options
@click.option("--output-dir", type=click.Path(file_okay=False), default=None,
              help="Where datasets/<run-id>/ goes (default: config generate.output_dir).")
@click.option("--pipeline", default=None, help="simple, full, or the path of a pipeline directory (default: config).")
@click.option("--teacher", "--model", "teacher", default=None,
              help="Teacher model name or path (default: config generate.teacher, the embedded SmolLM2).")
@click.option("--endpoint-url", "endpoint_urls", multiple=True,
              help="OpenAI-compatible teacher endpoint, e.g. http://127.0.0.1:8000/v1 (repeat for several).")
@click.option("--api-key", envvar="LABRADOR_API_KEY", default=None, help="API key for the endpoint(s).")
@options_from("labrador.sdg.context:GenerateOptions",
              exclude={"max_prompt_tokens", "dedup_threshold", "decontam_ngram", "decontam_threshold",
                       "max_answer_tokens"},
              rename={"scale_factor": ["--sdg-scale-factor", "--num-instructions"]})
@click.option("--threads", type=click.IntRange(1), default=None, help="CPU threads of an in-process teacher.")
@click.option("--no-cache", is_flag=True, help="Do not read or write the teacher-call cache.")
@click.option("-q", "--quiet", is_flag=True, help="No progress display.")
def generate(preset: str | None, taxonomy_path: str | None, taxonomy_base: str | None, output_dir: str | None,
             pipeline: str | None, teacher: str | None, endpoint_urls: tuple[str, ...], api_key: str | None,
             threads: int | None, no_cache: bool, quiet: bool, **given: Any) -> None:
    """Generate synthetic training data from the new or changed taxonomy leaves with a teacher model.

    Writes datasets/<run-id>/ (messages_, train_, test_, documents_, node_datasets_); `ilab data prepare`
    mixes it into the two training phases. Every teacher call is cached, so a killed run resumes where it stopped. Exits 1 when a leaf
    produced no data (the summary says why); the other leaves' data is still written. A generation option not
    given takes the value of --preset's `generate:` section, else config.yaml's, else GenerateOptions' default.
    """
    from pathlib import Path

    from rich.console import Console

    from labrador.config import layered, load_config
    from labrador.presets import load_preset
    from labrador.sdg.context import GenerateOptions
    from labrador.sdg.generate import GenerateRequest
    from labrador.sdg.generate import generate as run_generate
    from labrador.sdg.progress import ProgressDisplay, summary_tables

    cfg = load_config().generate
    options = layered(GenerateOptions, cfg.options(), load_preset(preset).get("generate"), given,
                      source="generation options")
    request = GenerateRequest(
        taxonomy_path=Path(taxonomy_path or cfg.taxonomy_path).expanduser(),
        output_dir=Path(output_dir or cfg.output_dir).expanduser(),
        taxonomy_base=taxonomy_base or cfg.taxonomy_base, pipeline=pipeline or cfg.pipeline,
        teacher=teacher or (None if endpoint_urls and not cfg.endpoint_urls else cfg.teacher),
        endpoint_urls=list(endpoint_urls or cfg.endpoint_urls), api_key=api_key, options=options,
        use_cache=not no_cache, n_threads=threads)
    console = Console(stderr=True)
    result = run_generate(request, display=ProgressDisplay(console, enabled=not quiet))
    for table in summary_tables(result.summary):
        console.print(table)
    t = result.summary["teacher_stats"]
    console.print(f"Teacher: {t['requests']} requests, {t['cache_hits']} from cache, {t['errors']} errors, "
                  f"{t['prompt_tokens']} tokens in / {t['completion_tokens']} out; busy {t['busy_seconds']:.1f} s "
                  f"of {t['wall_seconds']:.1f} s wall ({100 * t['busy_ratio']:.0f}%).", highlight=False)
    if result.run_dir is not None:
        click.echo(f"Wrote {result.run_dir}")
    else:
        click.echo("No data was generated; nothing was written.", err=True)
    failed = result.failed_leaves
    if failed:
        click.secho(f"{len(failed)} leaf/leaves produced no data: {', '.join(failed)} (see the summary above).",
                    fg="red", err=True)
        raise SystemExit(1)


@click.command(short_help="List generated datasets with row counts.")
@click.option("--output-dir", "--dataset-dir", "output_dir", type=click.Path(file_okay=False), default=None,
              help="Datasets directory (default: config generate.output_dir).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_runs(output_dir: str | None, as_json: bool) -> None:
    """List generated dataset runs with their row counts, pipelines and dates."""
    import json
    from pathlib import Path

    from labrador.config import load_config
    from labrador.sdg.runs import list_dataset_runs

    root = Path(output_dir or load_config().generate.output_dir).expanduser()
    runs = list_dataset_runs(root)
    if as_json:
        click.echo(json.dumps(runs, indent=2))
        return
    if not runs:
        click.echo(f"No generated datasets in {root}. Run `ilab data generate` first.")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=str(root))
    for column in ("run", "created", "pipeline", "teacher", "generated", "knowledge", "skills", "test"):
        table.add_column(column)
    for run in runs:
        table.add_row(run["run"], run["created"], run["pipeline"], run["teacher"], str(run["generated"]),
                      str(run["knowledge"]), str(run["skills"]), str(run["test"]))
    Console().print(table)
