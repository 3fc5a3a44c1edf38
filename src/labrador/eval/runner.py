"""One entry point for every benchmark: check the options, load the models, run, write the results dir.

Everything that can be checked without a model (judge present, data files readable, taxonomy present) is
checked first, so a mistake costs no model load and no inference.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from labrador import paths
from labrador.errors import ConfigError, EndpointError, LabradorError
from labrador.eval import BENCHMARKS, JUDGED
from labrador.eval.calls import Model, default_cache_path, model_fingerprint
from labrador.llm import LLMClient
from labrador.llm.cache import CallCache


@dataclass
class EvalOptions:
    benchmark: str
    model: str | None = None
    base_model: str | None = None  # mmlu/mt_bench: compare when given; *_branch: required
    judge_model: str | None = None
    judge_endpoint: str | None = None
    endpoint_url: str | None = None  # serve the candidate (and base) from this OpenAI-compatible endpoint
    api_key: str | None = None
    tasks_dir: Path | None = None
    data_dir: Path | None = None
    few_shots: int | None = None  # None: 5 for mmlu, 0 for mmlu_branch
    max_questions: int | None = None
    taxonomy_path: Path | None = None
    taxonomy_base: str = "origin/main"
    input_file: Path | None = None
    questions: Path | None = None  # keyfacts: the YAML question file
    output_dir: Path | None = None
    num_workers: int = 1
    max_tokens: int = 1024
    judge_max_tokens: int = 2048
    use_cache: bool = True
    client_options: dict = field(default_factory=dict)  # extra get_client options (e.g. n_ctx)


@dataclass
class EvalOutcome:
    results_dir: Path
    summary: dict


def default_mt_bench_dir() -> Path:
    return paths.data_subdir("eval") / "mt_bench"


def check_options(opts: EvalOptions) -> None:
    """Raise a LabradorError for anything wrong that can be seen without loading a model."""
    b = opts.benchmark
    if b not in BENCHMARKS:
        raise ConfigError(f"Unknown benchmark {b!r}; choose one of {', '.join(BENCHMARKS)}.")
    if b in JUDGED and not (opts.judge_model or opts.judge_endpoint):
        raise ConfigError(f"The {b} benchmark needs a judge model: pass --judge-model NAME_OR_PATH or "
                          "--judge-endpoint URL (or set evaluate.judge_model in config.yaml).")
    if b != "dk_bench" and not (opts.model or opts.endpoint_url):
        raise ConfigError(f"The {b} benchmark needs the model to evaluate: pass --model NAME_OR_PATH "
                          "(or set evaluate.model in config.yaml).")
    if b in ("mmlu_branch", "mt_bench_branch") and not opts.base_model:
        raise ConfigError(f"{b} compares a base model with the tuned one: pass --base-model.")
    if opts.num_workers < 1:
        raise ConfigError("--num-workers must be at least 1.")
    _check_data(opts)


def _check_data(opts: EvalOptions) -> None:
    """The benchmark's data files and taxonomy are there and readable."""
    from labrador.eval.dk_bench import check_responses, load_items
    from labrador.eval.questions import load_question_set

    b = opts.benchmark
    if b in ("mt_bench", "mt_bench_branch"):
        data_dir = opts.data_dir or default_mt_bench_dir()
        for name in ("question.jsonl", "judge_prompts.jsonl") if b == "mt_bench" else ("judge_prompts.jsonl",):
            if not (data_dir / name).is_file():
                raise ConfigError(f"{data_dir / name} not found: pass --data-dir with the MT-Bench data "
                                  "(question.jsonl, judge_prompts.jsonl, reference_answer/gpt-4.jsonl from "
                                  "FastChat's fastchat/llm_judge/data/mt_bench).")
    if b in ("mmlu", "mmlu_branch") and opts.tasks_dir is not None and not Path(opts.tasks_dir).is_dir():
        raise ConfigError(f"{opts.tasks_dir}: --tasks-dir is not a directory.")
    if b in ("mt_bench_branch",) or (b == "mmlu_branch" and opts.tasks_dir is None):
        if opts.taxonomy_path is None or not Path(opts.taxonomy_path).is_dir():
            raise ConfigError(f"{opts.taxonomy_path}: taxonomy not found; pass --taxonomy-path (a git checkout "
                              "of your taxonomy) and --taxonomy-base.")
    if b == "dk_bench":
        if opts.input_file is None:
            raise ConfigError("dk_bench needs --input-file: a JSONL of {\"user_input\", \"reference\", "
                              "[\"response\"], [\"context\"]} objects.")
        items = load_items(Path(opts.input_file), opts.max_questions)
        if not (opts.model or opts.endpoint_url):
            check_responses(items, Path(opts.input_file))
    if b == "keyfacts":
        if opts.questions is None:
            raise ConfigError("keyfacts needs --questions FILE: a YAML file with a 'questions' list of "
                              "{question, key_facts, [answer]} items (see docs/evaluation.md).")
        load_question_set(Path(opts.questions))


def short_label(spec: str) -> str:
    """A model's name for tables: the file or directory name of a local path, else the spec itself."""
    path = Path(spec).expanduser()
    return path.name if path.exists() else spec


class ClientPool:
    """One client per distinct model spec (a judge that is also the candidate is loaded once)."""

    def __init__(self, opts: EvalOptions, provided: dict[str, LLMClient] | None, cache: CallCache) -> None:
        self.opts, self.provided, self.cache = opts, dict(provided or {}), cache
        self._owned: dict[str, LLMClient] = {}

    def _client(self, key: str, spec: str | None, endpoint: str | None) -> LLMClient:
        if key in self.provided:
            return self.provided[key]
        if key not in self._owned:
            from labrador.llm import get_client

            urls = [endpoint] if endpoint else None
            self._owned[key] = get_client(spec, endpoint_urls=urls, api_key=self.opts.api_key,
                                          **self.opts.client_options)
        return self._owned[key]

    def _model(self, spec: str | None, endpoint: str | None, served_name: bool) -> Model:
        """Without a spec the model is the one `endpoint` serves, labelled by its served name or the URL."""
        key = f"{endpoint}#{spec or ''}" if endpoint else str(spec)
        client = self._client(key, spec, endpoint)
        served = getattr(client, "model_name", "") if served_name else ""
        label = short_label(spec) if spec else served or str(endpoint)
        return Model(label, client, model_fingerprint(key, client), self.cache)

    def candidate(self, spec: str | None) -> Model:
        """The model under test (or the base model); with --endpoint-url, spec None means the served model."""
        return self._model(spec, self.opts.endpoint_url, served_name=True)

    def judge(self) -> Model:
        return self._model(self.opts.judge_model, self.opts.judge_endpoint, served_name=False)

    def close(self) -> None:
        for client in self._owned.values():
            client.close()
        self._owned.clear()


@contextmanager
def _progress(console: Console) -> Iterator[Callable[[str, int], Callable[[int], None]]]:
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        def start(description: str, total: int) -> Callable[[int], None]:
            task = bar.add_task(description, total=total)
            return lambda n: bar.advance(task, n)

        yield start


def _require_scores(summary: dict, what: str) -> None:
    """A run in which every judge call failed says nothing: stop instead of writing a hollow report."""
    if summary["judgments"] and summary["errors"] == summary["judgments"]:
        raise EndpointError(f"Every {what} call failed; see the 'error' fields. Check that the judge/candidate "
                            "model loads or that the endpoint is reachable, then re-run (finished calls are "
                            "cached).")


def run_evaluation(opts: EvalOptions, console: Console | None = None,
                   clients: dict[str, LLMClient] | None = None) -> EvalOutcome:
    """Run one benchmark and return the committed results dir and the summary. `clients` maps a model
    spec (or `endpoint#spec`) to an already loaded client, which is then used and not closed."""
    from labrador.eval.report import ResultsDir

    check_options(opts)
    console = console or Console()
    output_dir = Path(opts.output_dir or paths.data_subdir("logs") / "eval")
    cache = CallCache(default_cache_path() if opts.use_cache else None)
    pool = ClientPool(opts, clients, cache)
    started = time.perf_counter()
    try:
        out = ResultsDir(output_dir, opts.benchmark)
        run = {"mmlu": _run_mmlu, "mmlu_branch": _run_mmlu, "mt_bench": _run_mt, "mt_bench_branch": _run_mt,
               "keyfacts": _run_keyfacts}.get(opts.benchmark, _run_dk)
        with _progress(console) as progress:
            summary = run(opts, pool, out, console, progress)
        summary["elapsed_s"] = round(time.perf_counter() - started, 2)
        summary["cache"] = {"hits": cache.hits, "misses": cache.misses}
        out.write_json("summary.json", summary)  # each benchmark's writer returns it; written once, here
        final = out.commit()
    finally:
        pool.close()
        cache.close()
    console.print(f"Results written to {final}")
    return EvalOutcome(final, summary)


def _settings(opts: EvalOptions, **extra: object) -> dict:
    keep = ("max_questions", "num_workers", "max_tokens", "judge_max_tokens")
    settings = {k: v for k, v in asdict(opts).items() if k in keep}
    return {"settings": {**settings, **{k: str(v) if isinstance(v, Path) else v for k, v in extra.items()}}}


def _roles(opts: EvalOptions, pool: ClientPool) -> dict[str, Model]:
    """The models a run answers with, in run order: the base model first when there is one, then the tuned."""
    return {**({"base": pool.candidate(opts.base_model)} if opts.base_model else {}),
            "tuned": pool.candidate(opts.model)}


def _run_mmlu(opts: EvalOptions, pool: ClientPool, out, console: Console, progress) -> dict:
    from labrador.eval import branch, mmlu
    from labrador.eval.mmlu_data import MCDataset, load_hf_mmlu, load_tasks_dir

    shots = (5 if opts.benchmark == "mmlu" else 0) if opts.few_shots is None else opts.few_shots
    if opts.benchmark == "mmlu":
        data = load_tasks_dir(Path(opts.tasks_dir)) if opts.tasks_dir else load_hf_mmlu()
        source = str(opts.tasks_dir) if opts.tasks_dir else "huggingface:cais/mmlu"
    elif opts.tasks_dir:
        data, source = load_tasks_dir(Path(opts.tasks_dir), "mmlubench_*"), str(opts.tasks_dir)
    else:
        leaves = branch.changed_leaves(Path(opts.taxonomy_path or "."), opts.taxonomy_base)
        data = MCDataset(test=branch.mc_tasks(leaves))
        source = f"taxonomy {opts.taxonomy_path} against {opts.taxonomy_base}"
    data = data.limited(opts.max_questions)
    settings = _settings(opts, few_shots=shots, source=source)
    models = _roles(opts, pool)
    reports = {role: mmlu.run_multiple_choice(model, data, shots, opts.num_workers,
                                              progress(f"{opts.benchmark} {role}", len(data.test)))
               for role, model in models.items()}
    if opts.base_model:
        return mmlu.write_comparison(out, console, opts.benchmark, models["base"], models["tuned"],
                                     reports["base"], reports["tuned"], settings)
    return mmlu.write_single(out, console, opts.benchmark, models["tuned"], reports["tuned"], settings)


def _run_mt(opts: EvalOptions, pool: ClientPool, out, console: Console, progress) -> dict:
    from labrador.eval import branch, mt_report
    from labrador.eval.judge import Judge, load_judge_prompts
    from labrador.eval.mt_bench import load_questions, run_mt_bench, summarize

    data_dir = Path(opts.data_dir or default_mt_bench_dir())
    prompts = load_judge_prompts(data_dir / "judge_prompts.jsonl")
    if opts.benchmark == "mt_bench":
        questions = load_questions(data_dir, opts.max_questions)
    else:
        leaves = branch.changed_leaves(Path(opts.taxonomy_path or "."), opts.taxonomy_base)
        questions = branch.mt_questions(leaves)[: opts.max_questions or None]
    settings = _settings(opts, data_dir=data_dir, questions=len(questions))
    judge_model = pool.judge()
    judge = Judge(judge_model, opts.judge_max_tokens)
    models, runs = _roles(opts, pool), {}
    for role, model in models.items():
        runs[role] = run_mt_bench(model, judge, prompts, questions, opts.max_tokens, opts.num_workers,
                                  progress(f"{opts.benchmark} {role}", len(questions)))
        _require_scores(summarize(runs[role]), f"{opts.benchmark} ({role})")
    if not opts.base_model:
        return mt_report.write_mt_single(out, console, models["tuned"], judge_model, runs["tuned"], settings)
    write = mt_report.write_branch_comparison if opts.benchmark == "mt_bench_branch" else mt_report.write_mt_comparison
    return write(out, console, models["base"], models["tuned"], judge_model, runs["base"], runs["tuned"], settings)


def _run_dk(opts: EvalOptions, pool: ClientPool, out, console: Console, progress) -> dict:
    from labrador.eval.dk_bench import load_items, run_dk_bench, write_dk_bench
    from labrador.eval.judge import Judge

    items = load_items(Path(str(opts.input_file)), opts.max_questions)
    judge_model = pool.judge()
    model = pool.candidate(opts.model) if opts.model or opts.endpoint_url else None
    results = run_dk_bench(items, Judge(judge_model, opts.judge_max_tokens), model, opts.max_tokens,
                           opts.num_workers, progress("dk_bench", len(items)))
    if all(r.judgment.error for r in results):
        raise LabradorError(f"Every dk_bench call failed (first error: {results[0].judgment.error}). Check the "
                            "judge and the model, then re-run (finished calls are cached).")
    return write_dk_bench(out, console, results, model, judge_model,
                          _settings(opts, input_file=opts.input_file))


def _run_keyfacts(opts: EvalOptions, pool: ClientPool, out, console: Console, progress) -> dict:
    from labrador.eval import keyfacts
    from labrador.eval.judge import Judge
    from labrador.eval.questions import load_question_set

    questions = load_question_set(Path(str(opts.questions))).questions[: opts.max_questions or None]
    settings = _settings(opts, questions_file=opts.questions)
    models = _roles(opts, pool)
    rows = {role: keyfacts.answer_questions(model, questions, opts.max_tokens, opts.num_workers,
                                            progress(f"keyfacts {role}", len(questions)))
            for role, model in models.items()}
    if opts.base_model:
        return keyfacts.write_comparison(out, console, models["base"], models["tuned"], rows["base"],
                                         rows["tuned"], settings)
    judged = None
    if opts.judge_model or opts.judge_endpoint:
        judge = Judge(pool.judge(), opts.judge_max_tokens)
        judged = keyfacts.judge_answers(judge, questions, rows["tuned"], opts.num_workers)
    return keyfacts.write_single(out, console, models["tuned"], rows["tuned"], judged, settings)
