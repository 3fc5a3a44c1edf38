"""DK-Bench: your own questions with reference answers; a judge rates each response 1-5 against the reference.

Input JSONL, one object per line: `user_input` (the question), `reference` (the correct answer), optional
`response` (judged as is when no model is given) and optional `context` (shown to the candidate and the judge).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from labrador.errors import DataError
from labrador.eval.branch import GROUNDED_TEMPLATE
from labrador.eval.calls import Model, parallel_map
from labrador.eval.judge import Judge, Judgment
from labrador.eval.report import ResultsDir, mean, print_table
from labrador.files import iter_objects
from labrador.llm import SamplingParams

SCORE_RANGE = (1.0, 5.0)

RUBRIC = """\
Score 1: the response is wrong, irrelevant, or contradicts the reference answer.
Score 2: the response touches the reference answer but has major errors or leaves out most of it.
Score 3: the response agrees with the reference answer in substance but is vague, incomplete or has small errors.
Score 4: the response agrees with the reference answer and has at most minor omissions.
Score 5: the response is fully correct and complete with respect to the reference answer."""

JUDGE_SYSTEM = "You are a strict and fair grader of answers to questions."
JUDGE_TEMPLATE = """\
[Instruction]
Rate how well the response answers the question, judged against the reference answer, using this rubric:
{rubric}
First give a one-sentence justification, then the rating in exactly this format: "Rating: [[score]]",
for example "Rating: [[3]]".
{context_block}
[Question]
{question}

[The Start of Reference Answer]
{reference}
[The End of Reference Answer]

[The Start of Response]
{response}
[The End of Response]"""


@dataclass(frozen=True)
class DKItem:
    line: int
    user_input: str
    reference: str
    response: str | None = None
    context: str | None = None


def load_items(path: Path, max_questions: int | None = None) -> list[DKItem]:
    if not path.is_file():
        raise DataError(f"{path}: DK-Bench input file not found. Pass --input-file with a JSONL of "
                        "{\"user_input\", \"reference\", [\"response\"], [\"context\"]} objects.")
    items = []
    for n, row in iter_objects(path, "a JSON object with user_input and reference"):
        where = f"{path}:{n}"
        for key in ("user_input", "reference"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise DataError(f"{where}: '{key}' must be a non-empty string.")
        for key in ("response", "context"):
            if row.get(key) is not None and not isinstance(row[key], str):
                raise DataError(f"{where}: '{key}' must be a string when present.")
        items.append(DKItem(n, row["user_input"], row["reference"], row.get("response"), row.get("context")))
    if not items:
        raise DataError(f"{path}: the file holds no questions.")
    return items[:max_questions] if max_questions else items


def check_responses(items: list[DKItem], path: Path) -> None:
    """Without a model every row must bring its own response (checked before any judge call)."""
    missing = [i.line for i in items if not (i.response or "").strip()]
    if missing:
        raise DataError(f"{path}:{missing[0]}: no 'response' to judge and no --model to answer with "
                        f"({len(missing)} rows lack one). Add responses or pass --model.")


def judge_messages(item: DKItem, response: str) -> list[dict[str, str]]:
    context_block = f"\n[Context]\n{item.context.strip()}\n" if item.context else ""
    user = JUDGE_TEMPLATE.format(rubric=RUBRIC, context_block=context_block, question=item.user_input,
                                 reference=item.reference, response=response)
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


@dataclass
class DKResult:
    item: DKItem
    response: str
    judgment: Judgment

    def to_json(self) -> dict:
        return {"line": self.item.line, "user_input": self.item.user_input, "reference": self.item.reference,
                "context": self.item.context, "response": self.response, **self.judgment.to_json()}


def run_dk_bench(items: list[DKItem], judge: Judge, model: Model | None, max_tokens: int, workers: int = 1,
                 progress: Callable[[int], None] | None = None) -> list[DKResult]:
    params = SamplingParams(temperature=0.0, max_tokens=max_tokens)

    def one(item: DKItem) -> DKResult:
        response = item.response or ""
        if model is not None:
            question = item.user_input
            if item.context:
                question = GROUNDED_TEMPLATE.format(context=item.context.strip(), question=item.user_input)
            try:
                response = model.chat([{"role": "user", "content": question}], params).strip()
            except Exception as err:  # noqa: BLE001 - recorded per question
                return DKResult(item, "", Judgment(None, "", f"candidate failed: {type(err).__name__}: {err}"))
        return DKResult(item, response, judge.rate(judge_messages(item, response), *SCORE_RANGE))

    return parallel_map(one, items, workers, progress)


def write_dk_bench(out: ResultsDir, console: Console, results: list[DKResult], model: Model | None, judge: Model,
                   settings: dict) -> dict:
    scores = [r.judgment.score for r in results]
    valid = [s for s in scores if s is not None]
    summary = {"benchmark": "dk_bench", "model": model.label if model else "responses from the input file",
               "judge": judge.label, **settings, "mean": mean(scores), "total": sum(valid),
               "max_total": 5 * len(results), "questions": len(results), "scored": len(valid),
               "unparsable": sum(1 for r in results if r.judgment.score is None and r.judgment.error is None),
               "errors": sum(1 for r in results if r.judgment.error is not None),
               "distribution": {str(k): sum(1 for s in valid if int(s) == k) for k in range(1, 6)}}
    rows = [r.to_json() for r in results]
    out.write_jsonl("items.jsonl", rows)
    out.write_csv("items.csv", rows, ["line", "user_input", "reference", "response", "score", "judgment", "error"])
    table = [(str(r.item.line), r.item.user_input[:60], r.judgment.score if r.judgment.score is not None
              else ("error" if r.judgment.error else "unparsable")) for r in results]
    table.append(("mean", "", summary["mean"]))
    print_table(console, f"dk_bench (judge {judge.label})", ["line", "question", "score (1-5)"], table)
    console.print(f"{summary['scored']}/{len(results)} scored, {summary['unparsable']} unparsable, "
                  f"{summary['errors']} failed calls")
    return summary
