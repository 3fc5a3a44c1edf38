"""The real stage functions: thin calls into the taxonomy, sdg, train, models and eval libraries.

The runner (`labrador.pipeline.runner`) decides *whether* a stage runs; these functions only *do* it. Each
returns a JSON-able dict that the runner stores in the stage's stamp.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labrador.errors import DataError, LabradorError
from labrador.eval.questions import QuestionSet, load_question_set
from labrador.pipeline.settings import PipelineSettings
from labrador.prepare.rows import leaf_seeds
from labrador.train.options import TrainOptions


def validate(settings: PipelineSettings) -> list[dict[str, Any]]:
    """The changed leaves (validated); TaxonomyError listing every problem otherwise."""
    from labrador.taxonomy import load_leaves

    leaves = load_leaves(settings.taxonomy_path, settings.taxonomy_base)
    if not leaves:
        raise LabradorError(f"No new or changed leaves in {settings.taxonomy_path} against "
                            f"'{settings.taxonomy_base}'; add or edit a qna.yaml, or pass --taxonomy-base empty.")
    return [leaf_seeds(leaf) for leaf in leaves]


def generate(settings: PipelineSettings, out_dir: Path) -> dict[str, Any]:
    """Generation with `settings.generate` and the teacher (what the stage's stamp hashes)."""
    from labrador.sdg.generate import GenerateRequest
    from labrador.sdg.generate import generate as run_generate

    request = GenerateRequest(taxonomy_path=settings.taxonomy_path, output_dir=out_dir,
                              taxonomy_base=settings.taxonomy_base, pipeline=settings.sdg_pipeline,
                              teacher=settings.teacher, options=settings.generate, n_threads=settings.threads)
    result = run_generate(request)
    if result.run_dir is None:
        reasons = "; ".join(f"{leaf['leaf']}: {leaf.get('error') or 'no rows'}" for leaf in result.summary["leaves"])
        raise DataError(f"Generation produced no data ({reasons}). Try a stronger teacher or a larger scale factor.")
    return {"dataset_dir": str(result.run_dir), "failed_leaves": result.failed_leaves,
            "per_leaf": {leaf["leaf"]: leaf.get("rows", 0) for leaf in result.summary["leaves"]},
            "teacher": {k: result.summary.get("teacher_stats", {}).get(k) for k in
                        ("requests", "cache_hits", "prompt_tokens", "completion_tokens", "wall_seconds")}}


def prepare_data(settings: PipelineSettings, generated: dict[str, Any], leaves: list[dict[str, Any]],
                 out_dir: Path) -> dict[str, Any]:
    """The generation run -> the training files (`labrador.prepare.prepare`)."""
    from labrador.prepare import prepare

    return prepare(Path(generated["dataset_dir"]), leaves, settings.prepare_options(), out_dir)


def train_phase(options: TrainOptions, phase: str) -> dict[str, Any]:
    """One training phase (LoRA or full) run with `options` (what the stage's stamp hashes); resumes when its
    checkpoint dir holds a stopped run."""
    from labrador.train.run import run_training

    ckpt_dir = Path(options.ckpt_output_dir)
    journal = run_training(options.model_copy(update={"resume": (ckpt_dir / "run_state.json").is_file()}))
    state = journal["phases"]["train"]
    if state.get("status") != "done" or not state.get("best"):
        raise LabradorError(f"training phase '{phase}' did not finish (status {state.get('status')}); "
                            f"re-run the pipeline to resume it from {ckpt_dir}.")
    return {"checkpoint": state["best"]["path"], "ckpt_dir": str(ckpt_dir), "samples": state.get("samples"),
            "steps": state.get("steps"), "dropped_too_long": state.get("dropped_too_long"),
            "metrics": str(ckpt_dir / "metrics.jsonl")}


def convert(settings: PipelineSettings, checkpoint: str, out_dir: Path) -> dict[str, Any]:
    from labrador.models.convert import hf_to_gguf

    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"model-{settings.gguf_outtype}.gguf"
    produced = hf_to_gguf(Path(checkpoint), target, settings.gguf_outtype, force=True, threads=settings.threads)
    return {"gguf": str(produced)}


def evaluate(settings: PipelineSettings, model: str, label: str, out_dir: Path,
             judge_client: Any = None) -> dict[str, Any]:
    """The key-facts benchmark (`labrador.eval.keyfacts`) on the held-out and general questions, and the
    judge's mean rating (1-5) of the held-out answers against their reference answers, in <out_dir>/<label>.json."""
    from labrador.eval import keyfacts
    from labrador.eval.calls import Model
    from labrador.files import atomic_write_json
    from labrador.llm import get_client

    sets = {name: load_question_set(path) for name, path in
            (("heldout", settings.heldout), ("general", settings.general_check)) if path is not None}
    client = get_client(model, n_threads=settings.threads, n_ctx=2048)
    summary: dict[str, Any] = {"model": model}
    details: dict[str, Any] = {}
    try:
        candidate = Model(model, client, model)  # no call cache: the stage's stamp decides re-runs
        for name, questions in sets.items():
            details[name] = keyfacts.answer_questions(candidate, questions.questions, settings.eval_max_tokens)
            summary[name] = keyfacts.accuracy(details[name])
        if not settings.skip_judge and "heldout" in sets:
            same = (settings.judge or settings.teacher) == model
            summary["judge"], details["judge"] = _judge(settings, judge_client or (client if same else None),
                                                        sets["heldout"], details["heldout"])
    finally:
        client.close()
    target = out_dir / f"{label}.json"
    atomic_write_json(target, {"summary": summary, "details": details}, indent=1, ensure_ascii=False)
    summary["details"] = str(target)
    return summary


def _judge(settings: PipelineSettings, client: Any, heldout: QuestionSet,
           rows: list[dict[str, Any]]) -> tuple[dict, list]:
    """The judge (settings.judge, else the teacher; loaded here unless `client` is given) rates the answers."""
    from labrador.eval.calls import Model
    from labrador.eval.judge import Judge
    from labrador.eval.keyfacts import judge_answers
    from labrador.llm import get_client

    name = settings.judge or settings.teacher
    own = None if client is not None else get_client(name, n_threads=settings.threads, n_ctx=2048)
    try:
        return judge_answers(Judge(Model(name, client or own, name), max_tokens=96), heldout.questions, rows)
    finally:
        if own is not None:
            own.close()
