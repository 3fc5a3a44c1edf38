"""MT-Bench: two-turn questions answered by the candidate, each turn rated 1-10 by a judge model.

Follows FastChat's `llm_judge` single-answer grading: temperature by category, `single-v1` for turn 1 and
`single-v1-multi-turn` for turn 2, and the `single-math-v1` variants with the GPT-4 reference answers for
math, reasoning and coding. Overall = mean of all valid turn scores; unparsable judgments are counted apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from labrador.errors import DataError
from labrador.eval.calls import Model, parallel_map
from labrador.eval.judge import Judge, JudgePrompt, Judgment
from labrador.eval.report import mean
from labrador.files import read_jsonl
from labrador.llm import SamplingParams

TEMPERATURE = {"writing": 0.7, "roleplay": 0.7, "extraction": 0.0, "math": 0.0, "coding": 0.0,
               "reasoning": 0.0, "stem": 0.1, "humanities": 0.1,
               # mt_bench_branch: greedy, so that base and tuned differ only by their weights
               "knowledge": 0.0, "freeform_skill": 0.0, "grounded_skill": 0.0}
DEFAULT_TEMPERATURE = 0.7
NEED_REFERENCE = {"math", "reasoning", "coding"}
SCORE_RANGE = (1.0, 10.0)


@dataclass(frozen=True)
class MTQuestion:
    id: str
    category: str
    turns: tuple[str, ...]
    reference: tuple[str, ...] | None = None  # one reference answer per turn, used when use_reference
    use_reference: bool = False
    group: str = ""  # mt_bench_branch: the leaf the question comes from


def load_questions(data_dir: Path, max_questions: int | None = None) -> list[MTQuestion]:
    """question.jsonl plus reference_answer/gpt-4.jsonl (references for the math/reasoning/coding questions)."""
    qfile = data_dir / "question.jsonl"
    if not qfile.is_file():
        raise DataError(f"{qfile}: MT-Bench questions not found. Pass --data-dir with question.jsonl, "
                        "judge_prompts.jsonl and reference_answer/gpt-4.jsonl (FastChat's llm_judge/data/mt_bench).")
    references: dict[str, tuple[str, ...]] = {}
    rfile = data_dir / "reference_answer" / "gpt-4.jsonl"
    if rfile.is_file():
        for row in read_jsonl(rfile):
            references[str(row["question_id"])] = tuple(row["choices"][0]["turns"])
    questions = []
    for row in read_jsonl(qfile):
        qid, category = str(row.get("question_id")), str(row.get("category", ""))
        turns = row.get("turns")
        if not isinstance(turns, list) or not turns or not all(isinstance(t, str) for t in turns):
            raise DataError(f"{qfile}: question {qid} has no list of 'turns'.")
        need = category in NEED_REFERENCE
        ref = references.get(qid)
        if need and ref is None:
            raise DataError(f"{rfile}: no reference answer for {category} question {qid}; the math/reasoning/"
                            "coding questions are judged against references (FastChat's gpt-4.jsonl).")
        questions.append(MTQuestion(qid, category, tuple(turns), ref, need))
    return questions[:max_questions] if max_questions else questions


@dataclass
class TurnResult:
    question: MTQuestion
    turn: int  # 1-based
    answer: str
    judgment: Judgment

    def to_json(self) -> dict:
        q = self.question
        row = {"question_id": q.id, "category": q.category, "turn": self.turn, "question": q.turns[self.turn - 1],
               "answer": self.answer, **self.judgment.to_json()}
        if q.group:
            row["leaf"] = q.group
        return row


def answer_question(model: Model, q: MTQuestion, max_tokens: int) -> list[str]:
    """All turns of a conversation, each turn seeing the previous answers; raises if a call fails."""
    params = SamplingParams(temperature=TEMPERATURE.get(q.category, DEFAULT_TEMPERATURE), max_tokens=max_tokens)
    messages: list[dict[str, str]] = []
    answers = []
    for turn in q.turns:
        messages.append({"role": "user", "content": turn})
        answer = model.chat(list(messages), params).strip()
        messages.append({"role": "assistant", "content": answer})
        answers.append(answer)
    return answers


def judge_messages(prompts: dict[str, JudgePrompt], q: MTQuestion, answers: list[str], turn: int) -> list[dict]:
    ref = q.reference if q.use_reference else None
    if turn == 1:
        fields = {"question": q.turns[0], "answer": answers[0]}
        if ref:
            fields["ref_answer_1"] = ref[0]
        return prompts["single-math-v1" if ref else "single-v1"].messages(**fields)
    fields = {"question_1": q.turns[0], "answer_1": answers[0], "question_2": q.turns[1], "answer_2": answers[1]}
    if ref:
        fields |= {"ref_answer_1": ref[0], "ref_answer_2": ref[1] if len(ref) > 1 else ""}
    return prompts["single-math-v1-multi-turn" if ref else "single-v1-multi-turn"].messages(**fields)


def evaluate_question(model: Model, judge: Judge, prompts: dict[str, JudgePrompt], q: MTQuestion,
                      max_tokens: int) -> list[TurnResult]:
    try:
        answers = answer_question(model, q, max_tokens)
    except Exception as err:  # noqa: BLE001 - recorded per question; the run goes on
        failed = Judgment(None, "", f"candidate failed: {type(err).__name__}: {err}")
        return [TurnResult(q, i + 1, "", failed) for i in range(len(q.turns))]
    return [TurnResult(q, i + 1, answers[i], judge.rate(judge_messages(prompts, q, answers, i + 1), *SCORE_RANGE))
            for i in range(len(q.turns))]


def run_mt_bench(model: Model, judge: Judge, prompts: dict[str, JudgePrompt], questions: list[MTQuestion],
                 max_tokens: int, workers: int = 1,
                 progress: Callable[[int], None] | None = None) -> list[TurnResult]:
    per_question = parallel_map(lambda q: evaluate_question(model, judge, prompts, q, max_tokens), questions,
                                workers, progress)
    return [t for turns in per_question for t in turns]


def summarize(turns: list[TurnResult]) -> dict:
    """Means per category and per turn over valid scores; counts of unparsable judgments and failed calls."""
    scored = [t for t in turns if t.judgment.score is not None]
    unparsable = sum(1 for t in turns if t.judgment.score is None and t.judgment.error is None)
    errors = sum(1 for t in turns if t.judgment.error is not None)
    categories: dict[str, list[float | None]] = {}
    for t in turns:  # every category is listed, None when none of its scores is valid
        categories.setdefault(t.question.category, []).append(t.judgment.score)
    max_turn = max((t.turn for t in turns), default=0)
    return {
        "overall": mean([t.judgment.score for t in scored]),
        "turns": {str(n): mean([t.judgment.score for t in scored if t.turn == n]) for n in range(1, max_turn + 1)},
        "categories": {c: mean(v) for c, v in sorted(categories.items())},
        "judgments": len(turns), "scored": len(scored), "unparsable": unparsable, "errors": errors,
        "error_rate": (unparsable + errors) / len(turns) if turns else 0.0,
    }
