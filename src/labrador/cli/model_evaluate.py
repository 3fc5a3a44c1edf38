"""`ilab model evaluate` (alias `ilab evaluate`): run one benchmark and write a results directory."""

from __future__ import annotations

from pathlib import Path

import click

from labrador.eval import BENCHMARKS

_PATH = click.Path(path_type=Path)


@click.command(short_help="Benchmark a model: mmlu, mmlu_branch, mt_bench, ...")
@click.option("--benchmark", "-b", required=True, type=click.Choice(BENCHMARKS), help="Which benchmark to run.")
@click.option("--model", "-m", help="Model to evaluate (name, GGUF file or HF directory; served name with "
              "--endpoint-url). Default: evaluate.model.")
@click.option("--base-model", help="Base model to compare with (required for *_branch; default there: "
              "evaluate.base_model). With mmlu/mt_bench/keyfacts it turns the run into a base-vs-tuned "
              "comparison.")
@click.option("--judge-model", help="Judge model for mt_bench, mt_bench_branch, dk_bench; optional for keyfacts "
              "(name or path; the served name with --judge-endpoint). Default: evaluate.judge_model.")
@click.option("--judge-endpoint", help="OpenAI-compatible URL of the judge, e.g. http://127.0.0.1:8000/v1.")
@click.option("--endpoint-url", help="OpenAI-compatible URL serving --model (and --base-model).")
@click.option("--api-key", envvar="LABRADOR_API_KEY", help="API key for the endpoints.")
@click.option("--tasks-dir", type=_PATH, help="mmlu: MMLU-format JSONL/CSV files (default: download cais/mmlu). "
              "mmlu_branch: mmlubench_<leaf>.jsonl files (default: built from the taxonomy).")
@click.option("--data-dir", type=_PATH, help="MT-Bench data: question.jsonl, judge_prompts.jsonl, "
              "reference_answer/gpt-4.jsonl.")
@click.option("--few-shots", type=click.IntRange(min=0), help="Few-shot examples (mmlu default: "
              "evaluate.few_shots = 5; mmlu_branch default 0).")
@click.option("--max-questions", type=click.IntRange(min=1), help="Evaluate at most N questions (per subject "
              "for mmlu and mmlu_branch).")
@click.option("--taxonomy-path", type=_PATH, help="Taxonomy checkout (default: generate.taxonomy_path).")
@click.option("--taxonomy-base", help="Git ref the branch is compared with (default: generate.taxonomy_base).")
@click.option("--input-file", type=_PATH, help="dk_bench: JSONL of {user_input, reference, [response], [context]}.")
@click.option("--questions", type=_PATH, help="keyfacts: YAML question file (questions: [{question, key_facts, "
              "[answer]}]).")
@click.option("--output-dir", type=_PATH, help="Where results directories go (default: evaluate.output_dir).")
@click.option("--threads", type=click.IntRange(1), default=None, help="CPU threads for an in-process model.")
@click.option("--num-workers", type=click.IntRange(min=1), default=4, show_default=True,
              help="Concurrent requests (candidate and judge).")
@click.option("--max-tokens", type=click.IntRange(min=1), default=1024, show_default=True,
              help="Longest candidate answer in tokens.")
@click.option("--judge-max-tokens", type=click.IntRange(min=1), default=2048, show_default=True,
              help="Longest judge reply in tokens.")
@click.option("--no-cache", is_flag=True, help="Do not reuse cached answers and judgments.")
def evaluate(benchmark: str, model: str | None, base_model: str | None, judge_model: str | None,
             judge_endpoint: str | None, endpoint_url: str | None, api_key: str | None, tasks_dir: Path | None,
             data_dir: Path | None, few_shots: int | None, max_questions: int | None, taxonomy_path: Path | None,
             taxonomy_base: str | None, input_file: Path | None, questions: Path | None, output_dir: Path | None,
             threads: int | None, num_workers: int, max_tokens: int, judge_max_tokens: int, no_cache: bool) -> None:
    """Benchmark a model: mmlu, mmlu_branch, mt_bench, mt_bench_branch, dk_bench or keyfacts.

    Every run writes <output-dir>/<benchmark>-<time>/ with summary.json and items.jsonl (plus comparison.png
    for base-vs-tuned runs and items.csv for dk_bench) and prints a table.
    """
    from labrador.config import load_config
    from labrador.eval.runner import EvalOptions, run_evaluation

    cfg = load_config()
    ev, gen = cfg.evaluate, cfg.generate
    if base_model is None and benchmark in ("mmlu_branch", "mt_bench_branch"):
        base_model = ev.base_model
    if few_shots is None and benchmark == "mmlu":
        few_shots = ev.few_shots
    opts = EvalOptions(
        benchmark=benchmark, model=model or ev.model, base_model=base_model,
        judge_model=judge_model or ev.judge_model, judge_endpoint=judge_endpoint, endpoint_url=endpoint_url,
        api_key=api_key, tasks_dir=tasks_dir, data_dir=data_dir, few_shots=few_shots, max_questions=max_questions,
        taxonomy_path=taxonomy_path or Path(gen.taxonomy_path), taxonomy_base=taxonomy_base or gen.taxonomy_base,
        input_file=input_file, questions=questions, output_dir=output_dir or Path(ev.output_dir),
        num_workers=num_workers, max_tokens=max_tokens, judge_max_tokens=judge_max_tokens, use_cache=not no_cache,
        client_options={"n_threads": threads} if threads else {},
    )
    run_evaluation(opts)
