"""The key-facts benchmark: does a model's answer state the facts a question file expects?

No judge model is needed for the score, so it is cheap and exactly reproducible (the pipeline scores its
held-out and general questions with it). Questions are asked greedily with the system prompt of the
generated training data (`labrador.sdg.output.SYSTEM_PROMPT`), as a user chatting with the tuned model would
be. With a judge, the answers to questions that have a reference answer are also rated 1-5 (DK-Bench rubric).

Normalisation, applied to the answer and to every key fact alike:
1. Unicode NFKD, accents dropped ("Zürich" -> "zurich"), casefolded;
2. thousands separators between digits removed ("1,250" -> "1250");
3. every character that is not a letter or a digit becomes a space, whitespace runs collapse to one space.
A fact is present when its normalised form occurs in the normalised answer on word boundaries ("cat" is not
found in "concatenate"; "18 42" is found in "in 18.42 s"). A key fact given as a list is a set of synonyms:
it counts as present when any of them is.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console

from labrador.eval.calls import Model, parallel_map
from labrador.eval.dk_bench import DKItem, run_dk_bench
from labrador.eval.judge import Judge
from labrador.eval.questions import CheckQuestion
from labrador.eval.report import ResultsDir, delta, print_table
from labrador.llm import SamplingParams
from labrador.sdg.output import SYSTEM_PROMPT

KeyFact = str | Sequence[str]

_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
_NON_WORD = re.compile(r"[^0-9a-z]+")


def normalize(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    stripped = _THOUSANDS.sub("", stripped)
    return _NON_WORD.sub(" ", stripped).strip()


def _contains(haystack: str, needle: str) -> bool:
    return bool(needle) and f" {needle} " in f" {haystack} "


def fact_present(answer: str, fact: KeyFact) -> bool:
    norm = normalize(answer)
    options = [fact] if isinstance(fact, str) else list(fact)
    return any(_contains(norm, normalize(option)) for option in options)


def score_answer(answer: str, key_facts: Sequence[KeyFact]) -> float:
    """Fraction of key facts present in the answer (1.0 when there are no key facts)."""
    if not key_facts:
        return 1.0
    return sum(fact_present(answer, f) for f in key_facts) / len(key_facts)


def answer_questions(model: Model, questions: Sequence[CheckQuestion], max_tokens: int, workers: int = 1,
                     progress: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """Ask each question greedily and score the answer: one {question, answer, key_facts, score} per question."""
    params = SamplingParams(temperature=0.0, max_tokens=max_tokens)

    def one(q: CheckQuestion) -> dict[str, Any]:
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": q.question}]
        answer = model.chat(messages, params).strip()
        return {"question": q.question, "answer": answer, "key_facts": q.key_facts,
                "score": score_answer(answer, q.key_facts)}

    return parallel_map(one, questions, workers, progress)


def accuracy(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """An answer is correct when it states every key fact."""
    correct = sum(1 for r in rows if r["score"] >= 1.0)
    return {"correct": correct, "total": len(rows), "accuracy": correct / len(rows)}


def judge_answers(judge: Judge, questions: Sequence[CheckQuestion], rows: Sequence[dict[str, Any]],
                  workers: int = 1) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The judge's 1-5 rating of each answer whose question has a reference answer; (summary, judgments)."""
    refs = {q.question: q.answer for q in questions}
    items = [DKItem(n, r["question"], refs.get(r["question"]) or "", r["answer"] or "(no answer)")
             for n, r in enumerate(rows, 1) if refs.get(r["question"])]
    results = run_dk_bench(items, judge, None, max_tokens=0, workers=workers)  # no candidate: responses given
    scores = [r.judgment.score for r in results if r.judgment.score is not None]
    summary = {"mean": sum(scores) / len(scores) if scores else None, "rated": len(scores), "total": len(items),
               "judge": judge.model.label}
    return summary, [r.to_json() for r in results]


def _scores(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {**accuracy(rows), "mean_score": sum(r["score"] for r in rows) / len(rows)}


def write_single(out: ResultsDir, console: Console, model: Model, rows: list[dict[str, Any]],
                 judged: tuple[dict, list] | None, settings: dict) -> dict:
    """items.jsonl (one answer per line); returns the summary (accuracy, mean key-fact score, judge summary)."""
    summary = {"benchmark": "keyfacts", "model": model.label, **settings, **_scores(rows)}
    if judged is not None:
        summary["judge"] = judged[0]
    out.write_jsonl("items.jsonl", rows)
    if judged is not None:
        out.write_jsonl("judgments.jsonl", judged[1])
    table = [(r["question"][:60], r["score"]) for r in rows]
    table.append((f"correct {summary['correct']}/{summary['total']}", summary["accuracy"]))
    print_table(console, f"keyfacts: {model.label}", ["question", "key-fact score"], table)
    return summary


def write_comparison(out: ResultsDir, console: Console, base: Model, tuned: Model, base_rows: list[dict],
                     tuned_rows: list[dict], settings: dict) -> dict:
    """Base vs tuned: accuracy, mean score, and the questions whose score rose or fell."""
    b, t = _scores(base_rows), _scores(tuned_rows)
    pairs = list(zip(base_rows, tuned_rows, strict=True))
    summary = {"benchmark": "keyfacts", "base_model": base.label, "model": tuned.label, **settings,
               "base": b, "tuned": t, "delta": delta(t["accuracy"], b["accuracy"]),
               "improvements": [x["question"] for x, y in pairs if y["score"] > x["score"]],
               "regressions": [x["question"] for x, y in pairs if y["score"] < x["score"]]}
    out.write_jsonl("items.jsonl", [{"model": "base", **r} for r in base_rows] +
                    [{"model": "tuned", **r} for r in tuned_rows])
    out.comparison_chart({m: {"base": b[m], "tuned": t[m]} for m in ("accuracy", "mean_score")}, base.label,
                         tuned.label, "keyfacts: base vs tuned", "fraction")
    table = [(x["question"][:60], x["score"], y["score"], y["score"] - x["score"]) for x, y in pairs]
    table.append(("accuracy", b["accuracy"], t["accuracy"], summary["delta"]))
    print_table(console, f"keyfacts: base {base.label} vs tuned {tuned.label}",
                ["question", "base", "tuned", "delta"], table)
    return summary
