"""`prepare`: a generation run -> the training files (mixed, decontaminated, filtered, with extra rows).

Steps, in order: mix the phases (`labrador.prepare.mix`; InstructLab's runs come mixed); refuse seeds that hold a held-out question; drop generated rows that hold one; drop
knowledge rows with invented names, numbers or claims (`grounded_only`); then add closed-book copies of the
grounded phase-1 knowledge Q&A (`closed_book`), the knowledge leaves' seed Q&A pairs (`train_on_seeds`) and the
base student's answers to general prompts (`self_replay`), to both phases: phase 2 replays phase 1's knowledge,
as generation does. Row order: kept rows, copies, seed rows, replay rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labrador.errors import LabradorError
from labrador.files import write_jsonl
from labrador.prepare import replay
from labrador.prepare.decontam import check_seeds, drop_contaminated
from labrador.prepare.inputs import load_phases
from labrador.prepare.options import PrepareOptions
from labrador.prepare.rows import closed_book_copy, grounded_row, seed_rows
from labrador.sdg.output import SYSTEM_PROMPT
from labrador.sdg.quality import Decontaminator

KINDS = ("knowledge", "skills")


def prepare(dataset_dir: Path, leaves: list[dict[str, Any]], options: PrepareOptions,
            out_dir: Path) -> dict[str, Any]:
    """Write `<out_dir>/{knowledge,skills}_train_msgs_decontaminated.jsonl` from the run `dataset_dir` of
    `ilab data generate` (labrador's or InstructLab's, `labrador.prepare.inputs.load_phases`); `leaves` are
    `labrador.prepare.rows.leaf_seeds` of the taxonomy's changed leaves. Returns the counts (JSON-able)."""
    phases = load_phases(Path(dataset_dir), options)
    heldout = _questions(options.heldout)
    checker = Decontaminator(heldout)
    check_seeds(checker, leaves)
    out_dir.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"heldout_questions": len(heldout), "removed": [], "files": {}}
    rows: dict[str, list[dict[str, Any]]] = {}
    for kind in KINDS:
        generated_rows = phases[kind]
        rows[kind] = drop_contaminated(checker, generated_rows, kind, result["removed"])
        result["files"][kind] = str(out_dir / f"{kind}_train_msgs_decontaminated.jsonl")
        result[f"{kind}_rows"] = len(rows[kind])
        result[f"{kind}_generated"] = len(generated_rows)
    extra = _replay(options, heldout, result) if options.self_replay else []
    if options.replay_kl:
        extra = [{**row, "anchor": True} for row in extra]
    for kind in KINDS:
        _finish(kind, rows[kind], leaves, extra, options, result)
    return result


def _finish(kind: str, rows: list[dict[str, Any]], leaves: list[dict[str, Any]], replayed: list[dict[str, Any]],
            options: PrepareOptions, result: dict[str, Any]) -> None:
    """Filter one phase's decontaminated rows, add the copies, seed rows and replay rows, and write the file."""
    if options.grounded_only:
        kept = [r for r in rows if grounded_row(r)]
        result[f"{kind}_ungrounded_dropped"] = len(rows) - len(kept)
        rows = kept
    copies: list[dict[str, Any]] = []
    if options.closed_book:
        source = [r for r in rows if (r.get("metadata") or {}).get("dataset") == "knowledge_p07"]
        copies = [c for c in map(closed_book_copy, source) if c is not None]
    system = next((m["content"] for r in rows for m in r.get("messages", [])[:1] if m.get("role") == "system"),
                  SYSTEM_PROMPT)
    seeds = seed_rows(leaves, system) if options.train_on_seeds else []
    write_jsonl(Path(result["files"][kind]), rows + copies + seeds + replayed)
    result[f"{kind}_closed_book"] = len(copies)
    result[f"{kind}_seed_qa"] = len(seeds)
    result[f"{kind}_self_replay"] = len(replayed)
    result[f"{kind}_rows"] = len(rows) + len(copies) + len(seeds) + len(replayed)


def _replay(options: PrepareOptions, heldout: list[str], result: dict[str, Any]) -> list[dict[str, Any]]:
    """The base student's answers to the replay prompts that hold no evaluation question (`prepare.replay`)."""
    from labrador.llm import get_client

    if options.student is None:
        raise LabradorError("Self-replay needs the student model that will be trained (`--student`); "
                            "or turn it off with `--no-self-replay`.")
    prompts = replay.load_prompts(options.replay_prompts or replay.bundled_prompts())
    prompts, result["replay_prompts_dropped"] = replay.clean_prompts(prompts, heldout + _questions(
        options.general_check))
    client = get_client(options.student, n_threads=options.threads, n_ctx=2048)
    try:
        return replay.replay_rows(client, prompts, SYSTEM_PROMPT, options.replay_max_tokens)
    finally:
        client.close()


def _questions(path: Path | None) -> list[str]:
    from labrador.eval.questions import load_question_set

    return [] if path is None else [q.question for q in load_question_set(path).questions]

