"""Multiple-choice scoring by log-likelihood (the MMLU method of lm-eval's `multiple_choice` tasks).

The prompt ends in "Answer:"; each choice letter is scored as the continuation " A", " B", ... and the choice
whose letter has the highest log-probability is the model's answer. No text is generated, so the result does
not depend on sampling or on the model following an answer format.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

LETTERS = ("A", "B", "C", "D")

# (context, continuations) -> summed log-probability of each continuation's tokens.
Scorer = Callable[[str, list[str]], list[float]]


@dataclass(frozen=True)
class MCQuestion:
    question: str
    choices: tuple[str, ...]
    answer: int  # index into choices
    subject: str = ""
    id: str = ""


@dataclass
class MCResult:
    question: MCQuestion
    loglikelihoods: list[float]
    predicted: int

    @property
    def correct(self) -> bool:
        return self.predicted == self.question.answer

    def to_json(self) -> dict:
        q = self.question
        return {"id": q.id, "subject": q.subject, "question": q.question, "choices": list(q.choices),
                "answer": LETTERS[q.answer], "predicted": LETTERS[self.predicted], "correct": self.correct,
                "loglikelihoods": [round(v, 6) for v in self.loglikelihoods]}


@dataclass
class MCReport:
    """Accuracy per subject (task) and overall; `overall` is the plain mean of subject accuracies (as lm-eval's
    MMLU group score and InstructLab report it), `micro` the fraction of all questions answered correctly."""

    results: list[MCResult] = field(default_factory=list)

    def by_subject(self) -> dict[str, list[MCResult]]:
        groups: dict[str, list[MCResult]] = {}
        for r in self.results:
            groups.setdefault(r.question.subject, []).append(r)
        return dict(sorted(groups.items()))

    def subject_accuracy(self) -> dict[str, float]:
        return {s: sum(r.correct for r in rs) / len(rs) for s, rs in self.by_subject().items()}

    @property
    def overall(self) -> float:
        acc = self.subject_accuracy()
        return sum(acc.values()) / len(acc) if acc else 0.0

    @property
    def micro(self) -> float:
        return sum(r.correct for r in self.results) / len(self.results) if self.results else 0.0

    def summary(self) -> dict:
        return {"overall": self.overall, "micro_accuracy": self.micro, "questions": len(self.results),
                "subjects": {s: {"accuracy": a, "questions": len(self.by_subject()[s])}
                             for s, a in self.subject_accuracy().items()}}


def format_question(q: MCQuestion, with_answer: bool = False) -> str:
    """lm-eval's MMLU layout: question, lettered choices, "Answer:" (and " X" for a few-shot example)."""
    lines = [q.question.strip()]
    lines += [f"{LETTERS[i]}. {c}" for i, c in enumerate(q.choices)]
    text = "\n".join(lines) + "\nAnswer:"
    return text + f" {LETTERS[q.answer]}" if with_answer else text


def build_prompt(q: MCQuestion, shots: Sequence[MCQuestion] = ()) -> str:
    """Header naming the subject, the few-shot examples with their answers, then the question."""
    subject = q.subject.replace("_", " ").strip()
    header = f"The following are multiple choice questions (with answers) about {subject}.\n\n" if subject else ""
    parts = [format_question(s, with_answer=True) for s in shots]
    parts.append(format_question(q))
    return header + "\n\n".join(parts)


def pick_answer(loglikelihoods: Sequence[float]) -> int:
    """Index of the highest log-likelihood; the first one wins a tie (deterministic)."""
    return max(range(len(loglikelihoods)), key=loglikelihoods.__getitem__, default=0)


def score_question(scorer: Scorer, q: MCQuestion, shots: Sequence[MCQuestion] = ()) -> MCResult:
    continuations = [f" {LETTERS[i]}" for i in range(len(q.choices))]
    lls = list(scorer(build_prompt(q, shots), continuations))
    if len(lls) != len(continuations):
        raise RuntimeError(f"scorer returned {len(lls)} values for {len(continuations)} choices")
    return MCResult(question=q, loglikelihoods=lls, predicted=pick_answer(lls))


def few_shot_examples(q: MCQuestion, dev: Sequence[MCQuestion], pool: Sequence[MCQuestion], k: int) -> list[MCQuestion]:
    """The first k dev questions of q's subject (lm-eval's choice); without a dev split, the first k other
    questions of the same subject (never q itself)."""
    if k <= 0:
        return []
    source = [d for d in dev if d.subject == q.subject] or [p for p in pool if p.subject == q.subject]
    return [s for s in source if s != q][:k]
