"""The real stage functions: thin calls into the taxonomy, sdg, train, models and eval libraries.

The runner (`labrador.pipeline.runner`) decides *whether* a stage runs; these functions only *do* it. Each
returns a JSON-able dict that the runner stores in the stage's stamp. A missing library (an optional part not
installed, or not built yet) becomes a LabradorError that names the stage and the command to run by hand.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from labrador.errors import DataError, LabradorError
from labrador.pipeline.decontam import Decontaminator, user_texts
from labrador.pipeline.questions import QuestionSet, load_question_set
from labrador.pipeline.settings import PipelineSettings
from labrador.sdg.facts import grounded_in, supported_in


def _require(module: str, stage: str, by_hand: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise LabradorError(f"The pipeline stage '{stage}' needs {module}, which is not available ({err}). "
                            f"Run the stage by hand with `{by_hand}`, or reinstall labrador.") from None


def validate(settings: PipelineSettings) -> list[dict[str, Any]]:
    """The changed leaves (validated); TaxonomyError listing every problem otherwise."""
    from labrador.taxonomy import load_leaves

    leaves = load_leaves(settings.taxonomy_path, settings.taxonomy_base)
    if not leaves:
        raise LabradorError(f"No new or changed leaves in {settings.taxonomy_path} against "
                            f"'{settings.taxonomy_base}'; add or edit a qna.yaml, or pass --taxonomy-base empty.")
    return [{"rel_path": leaf.rel_path, "kind": leaf.kind, "qna_path": str(leaf.qna_path),
             "seeds": _seed_texts(leaf),
             "seed_qa": [[qa.question, qa.answer] for seed in leaf.seed_examples for qa in seed.questions_and_answers]}
            for leaf in leaves]


def _seed_texts(leaf: Any) -> list[str]:
    texts = []
    for seed in leaf.seed_examples:
        texts += [t for t in (seed.question, seed.answer) if t]
        texts += [t for qa in seed.questions_and_answers for t in (qa.question, qa.answer)]
    return texts


def generate(settings: PipelineSettings, out_dir: Path) -> dict[str, Any]:
    sdg = _require("labrador.sdg.generate", "generate", "ilab data generate")
    from labrador.sdg.context import GenerateOptions

    options = GenerateOptions(scale_factor=settings.scale_factor, max_num_tokens=settings.max_num_tokens,
                              chunk_size=settings.chunk_size, num_workers=settings.num_workers, seed=settings.seed)
    request = sdg.GenerateRequest(taxonomy_path=settings.taxonomy_path, output_dir=out_dir,
                                  taxonomy_base=settings.taxonomy_base, pipeline=settings.sdg_pipeline,
                                  teacher=settings.teacher, options=options, n_threads=settings.threads)
    result = sdg.generate(request)
    if result.run_dir is None:
        reasons = "; ".join(f"{leaf['leaf']}: {leaf.get('error') or 'no rows'}" for leaf in result.summary["leaves"])
        raise DataError(f"Generation produced no data ({reasons}). Try a stronger teacher or a larger scale factor.")
    run_dir = Path(result.run_dir)
    knowledge = sorted(run_dir.glob("knowledge_train_msgs_*.jsonl"))
    skills = sorted(run_dir.glob("skills_train_msgs_*.jsonl"))
    return {"dataset_dir": str(run_dir), "knowledge": [str(p) for p in knowledge], "skills": [str(p) for p in skills],
            "failed_leaves": result.failed_leaves,
            "per_leaf": {leaf["leaf"]: leaf.get("rows", 0) for leaf in result.summary["leaves"]},
            "teacher": {k: result.summary.get("teacher_stats", {}).get(k) for k in
                        ("requests", "cache_hits", "prompt_tokens", "completion_tokens", "wall_seconds")}}


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(path)


def heldout_sets(settings: PipelineSettings) -> list[QuestionSet]:
    return [load_question_set(p) for p in (settings.heldout,) if p is not None]


def closed_book_copy(row: dict[str, Any]) -> dict[str, Any] | None:
    """A knowledge Q&A row asked without its document (the question is the user turn's last paragraph).

    Knowledge rows put the source chunk before the question, but users ask without the document; a copy of
    each Q&A with the question alone teaches the answer itself. Summary rows (no question) and answers that
    name things the source chunk does not (see `grounded_in`) give None.
    """
    meta = row.get("metadata") or {}
    if meta.get("leaf_kind") != "knowledge" or "summary_kind" in meta:
        return None
    messages = row.get("messages") or []
    users = [m for m in messages if m.get("role") == "user"]
    if len(users) != 1 or "\n\n" not in users[0]["content"]:
        return None
    source, question = (part.strip() for part in users[0]["content"].rsplit("\n\n", 1))
    answers = [m.get("content", "") for m in messages if m.get("role") == "assistant"]
    if not question or len(answers) != 1 or not grounded_in(answers[0], source):
        return None
    copied = [dict(m, content=question) if m is users[0] else dict(m) for m in messages]
    return {**{k: v for k, v in row.items() if k not in ("messages", "metadata", "id", "user")},
            "id": f"{row.get('id', '')}-closed-book", "messages": copied, "unmask": False,
            "metadata": {**meta, "dataset": "knowledge_closed_book"},
            **({"user": question} if "user" in row else {})}


def seed_rows(leaves: list[dict[str, Any]], system: str | None) -> list[dict[str, Any]]:
    """The contributors' own knowledge Q&A pairs as closed-book training rows (they are correct by definition)."""
    rows = []
    for leaf in leaves:
        for n, (question, answer) in enumerate(leaf.get("seed_qa", [])):
            messages = ([{"role": "system", "content": system}] if system else []) + [
                {"role": "user", "content": question}, {"role": "assistant", "content": answer}]
            rows.append({"id": f"seed-{leaf['rel_path']}-{n}", "messages": messages, "unmask": False,
                         "metadata": {"leaf": leaf["rel_path"], "leaf_kind": leaf["kind"], "dataset": "seed_qa"}})
    return rows


def prepare_data(settings: PipelineSettings, generated: dict[str, Any], leaves: list[dict[str, Any]],
                 out_dir: Path) -> dict[str, Any]:
    """Decontaminate; drop knowledge rows with invented names or numbers (`grounded_only`); then add closed-book
    copies of the grounded knowledge Q&A (see `closed_book_copy`), the knowledge leaves' seed Q&A pairs and the
    self-replay rows, to both phases (phase 2 replays phase 1's knowledge, like sdg does)."""
    result = decontaminate(settings, generated, leaves, out_dir)
    replay = self_replay(settings, result) if settings.self_replay else []
    if settings.replay_kl:
        replay = [{**row, "anchor": True} for row in replay]
    for kind in ("knowledge", "skills"):
        path = Path(result["files"][kind])
        rows = _read_jsonl(path)
        if settings.grounded_only:
            kept = [r for r in rows if _grounded_row(r)]
            result[f"{kind}_ungrounded_dropped"] = len(rows) - len(kept)
            rows = kept
        copies: list[dict[str, Any]] = []
        if settings.closed_book:
            source = [r for r in rows if (r.get("metadata") or {}).get("dataset") == "knowledge_p07"]
            copies = [c for c in map(closed_book_copy, source) if c is not None]
        system = next((m["content"] for r in rows for m in r.get("messages", [])[:1] if m.get("role") == "system"),
                      eval_system_prompt())
        seeds = seed_rows(leaves, system) if settings.train_on_seeds else []
        _write_jsonl(path, rows + copies + seeds + replay)
        result[f"{kind}_closed_book"] = len(copies)
        result[f"{kind}_seed_qa"] = len(seeds)
        result[f"{kind}_self_replay"] = len(replay)
        result[f"{kind}_rows"] = len(rows) + len(copies) + len(seeds) + len(replay)
    return result


def _grounded_row(row: dict[str, Any]) -> bool:
    """False for a knowledge row whose answer names a thing or a number its document does not (`grounded_in`),
    or, for a Q&A row, has a sentence that no sentence of the document supports (`supported_in`): a small
    teacher's invented "facts" ("England is the capital of the United Kingdom and ten other states", "it was
    founded by a farmer named Hester Vane") would be taught as knowledge. The document is the user turn
    without its last paragraph, the question: "When did the Great Flood of 2020 occur?" must not ground "The
    Great Flood of 2020 took place in 2020.". Other rows, and fact rows (their answer is the document), are kept.
    """
    meta = row.get("metadata") or {}
    if meta.get("leaf_kind") != "knowledge" or meta.get("closed_book"):
        return True
    messages = row.get("messages") or []
    user = "\n".join(m.get("content", "") for m in messages if m.get("role") == "user")
    summary = "summary_kind" in meta  # summaries join several sentences of the document into one
    source = user if summary or "\n\n" not in user else user.rsplit("\n\n", 1)[0]
    answers = [m.get("content", "") for m in messages if m.get("role") == "assistant"]
    return all(grounded_in(a, source) and (summary or supported_in(a, source)) for a in answers)


def self_replay(settings: PipelineSettings, result: dict[str, Any]) -> list[dict[str, Any]]:
    """The base student's answers to the replay prompts (see `labrador.pipeline.replay`)."""
    from labrador.llm import get_client
    from labrador.pipeline import replay

    prompts = replay.load_prompts(settings.replay_prompts or replay.bundled_prompts())
    questions = [q.question for qs in heldout_sets(settings) for q in qs.questions]
    if settings.general_check is not None:
        questions += [q.question for q in load_question_set(settings.general_check).questions]
    prompts, dropped = replay.clean_prompts(prompts, questions)
    result["replay_prompts_dropped"] = dropped
    client = get_client(settings.student, n_threads=settings.threads, n_ctx=2048)
    try:
        return replay.replay_rows(client, prompts, eval_system_prompt(), settings.replay_max_tokens)
    finally:
        client.close()


def _checked_texts(row: dict[str, Any]) -> list[str]:
    """The texts of a training row that must not contain a held-out question: every message, except that a
    knowledge-facts row's answer is a sentence of the contributed document (which answers held-out questions
    by design), so only its user turn, the teacher's question, is checked."""
    if (row.get("metadata") or {}).get("closed_book"):
        return user_texts(row)
    return [m.get("content", "") for m in row.get("messages", []) if isinstance(m, dict)]


def decontaminate(settings: PipelineSettings, generated: dict[str, Any], leaves: list[dict[str, Any]],
                  out_dir: Path) -> dict[str, Any]:
    """Drop generated rows that contain a held-out question (n-gram check); refuse seeds that contain one."""
    questions = [q.question for qs in heldout_sets(settings) for q in qs.questions]
    checker = Decontaminator(questions)
    for leaf in leaves:
        seed_report = checker.check(leaf["seeds"])
        if not seed_report.clean:
            hit = seed_report.overlaps[0]
            raise DataError(f"{leaf['qna_path']}: the seed text {hit.text!r} {hit.reason} of the held-out question "
                            f"{hit.heldout!r}. Held-out questions must be unseen; reword or remove one of them.")
    out_dir.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"heldout_questions": len(questions), "removed": [], "files": {}}
    for kind in ("knowledge", "skills"):
        rows = [row for f in generated.get(kind, []) for row in _read_jsonl(Path(f))]
        kept = []
        for row in rows:
            texts = _checked_texts(row)
            hit = next((h for h in map(checker.match, texts) if h is not None), None)
            if hit is None:
                kept.append(row)
            else:
                result["removed"].append({"kind": kind, "heldout": hit.heldout, "reason": hit.reason,
                                          "text": hit.text[:200]})
        target = out_dir / f"{kind}_train_msgs_decontaminated.jsonl"
        _write_jsonl(target, kept)
        result["files"][kind] = str(target)
        result[f"{kind}_rows"] = len(kept)
        result[f"{kind}_generated"] = len(rows)
    # Verify the written files: no kept row may overlap a held-out question.
    for target in result["files"].values():
        for row in _read_jsonl(Path(target)):
            for text in _checked_texts(row):
                if checker.match(text) is not None:
                    raise LabradorError(f"decontamination failed to remove a row from {target}")  # a bug, not input
    return result


def train_phase(settings: PipelineSettings, phase: str, data_file: str, start_model: str,
                ckpt_dir: Path) -> dict[str, Any]:
    """One training phase (LoRA or full) from `start_model`; resumes when `ckpt_dir` holds a stopped run."""
    run = _require("labrador.train.run", f"train_{phase}", "ilab model train")
    from labrador.train.options import TrainOptions

    epochs, lr = ((settings.knowledge_epochs, settings.knowledge_lr) if phase == "knowledge"
                  else (settings.skills_epochs, settings.skills_lr))
    opts = TrainOptions(model_path=start_model, data_path=data_file, ckpt_output_dir=str(ckpt_dir),
                        pipeline=settings.train_pipeline, strategy="single", num_epochs=epochs, learning_rate=lr,
                        effective_batch_size=settings.effective_batch_size, max_seq_len=settings.max_seq_len,
                        max_batch_len=max(settings.max_seq_len * 4, 2048), warmup_steps=2,
                        lora_rank=settings.lora_rank, lora_alpha=2 * settings.lora_rank, seed=settings.seed,
                        lora_target_modules=list(settings.lora_targets), anchor_weight=settings.anchor_weight,
                        held_out_fraction=0.0, resume=(ckpt_dir / "run_state.json").is_file())
    journal = run.run_training(opts)
    state = journal["phases"]["train"]
    if state.get("status") != "done" or not state.get("best"):
        raise LabradorError(f"training phase '{phase}' did not finish (status {state.get('status')}); "
                            f"re-run the pipeline to resume it from {ckpt_dir}.")
    return {"checkpoint": state["best"]["path"], "ckpt_dir": str(ckpt_dir), "samples": state.get("samples"),
            "steps": state.get("steps"), "dropped_too_long": state.get("dropped_too_long"),
            "metrics": str(ckpt_dir / "metrics.jsonl")}


def convert(settings: PipelineSettings, checkpoint: str, out_dir: Path) -> dict[str, Any]:
    conv = _require("labrador.models.convert", "convert", "ilab model convert")
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"model-{settings.gguf_outtype}.gguf"
    produced = conv.hf_to_gguf(Path(checkpoint), target, settings.gguf_outtype, force=True, threads=settings.threads)
    return {"gguf": str(produced)}


def eval_system_prompt() -> str | None:
    """The system prompt of the generated training data: base and tuned models are asked with it, like a
    user chatting with the tuned model would be (and `ilab model chat --context` is given it in the demo)."""
    try:
        from labrador.sdg.output import SYSTEM_PROMPT
    except ImportError:
        return None
    return SYSTEM_PROMPT


def _answer_all(client: Any, questions: list[Any], max_tokens: int) -> list[str]:
    from labrador.llm import SamplingParams

    params = SamplingParams(temperature=0.0, max_tokens=max_tokens)
    system = eval_system_prompt()
    head = [{"role": "system", "content": system}] if system else []
    return [client.chat([*head, {"role": "user", "content": q.question}], params).text.strip() for q in questions]


def evaluate(settings: PipelineSettings, model: str, label: str, out_dir: Path,
             judge_client: Any = None) -> dict[str, Any]:
    """Key-facts scores on the held-out and general questions, and the judge's mean rating (1-5) of the
    held-out answers against their reference answers."""
    from labrador.eval.keyfacts import score_answer
    from labrador.llm import get_client

    client = get_client(model, n_threads=settings.threads, n_ctx=2048)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"model": model}
    details: dict[str, Any] = {}
    try:
        sets = {"heldout": settings.heldout, "general": settings.general_check}
        for name, path in sets.items():
            if path is None:
                continue
            qs = load_question_set(path).questions
            answers = _answer_all(client, qs, settings.eval_max_tokens)
            rows = [{"question": q.question, "answer": a, "key_facts": q.key_facts,
                     "score": score_answer(a, q.key_facts)} for q, a in zip(qs, answers, strict=True)]
            correct = sum(1 for r in rows if r["score"] >= 1.0)
            summary[name] = {"correct": correct, "total": len(rows), "accuracy": correct / len(rows)}
            details[name] = rows
        if not settings.skip_judge and settings.heldout is not None:
            judge = judge_client or (client if (settings.judge or settings.teacher) == model else
                                     get_client(settings.judge or settings.teacher, n_threads=settings.threads,
                                                n_ctx=2048))
            summary["judge"], details["judge"] = _judge(judge, settings, details.get("heldout", []))
    finally:
        client.close()
    tmp = out_dir / f"{label}.json.tmp"
    tmp.write_text(json.dumps({"summary": summary, "details": details}, indent=1, ensure_ascii=False))
    tmp.replace(out_dir / f"{label}.json")
    summary["details"] = str(out_dir / f"{label}.json")
    return summary


def _judge(judge_client: Any, settings: PipelineSettings, rows: list[dict[str, Any]]) -> tuple[dict, list]:
    from labrador.eval.calls import CallCache, Model
    from labrador.eval.dk_bench import DKItem, run_dk_bench
    from labrador.eval.judge import Judge

    refs = {q.question: q.answer for q in load_question_set(settings.heldout).questions} if settings.heldout else {}
    items = [DKItem(n, r["question"], refs.get(r["question"]) or "", r["answer"] or "(no answer)")
             for n, r in enumerate(rows, 1) if refs.get(r["question"])]
    judge = Judge(Model("judge", judge_client, settings.judge or settings.teacher, CallCache(None)), max_tokens=96)
    results = run_dk_bench(items, judge, None, settings.eval_max_tokens)
    scores = [r.judgment.score for r in results if r.judgment.score is not None]
    summary = {"mean": sum(scores) / len(scores) if scores else None, "rated": len(scores), "total": len(items),
               "judge": settings.judge or settings.teacher}
    return summary, [r.to_json() for r in results]
