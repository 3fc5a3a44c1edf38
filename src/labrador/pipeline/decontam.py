"""Decontamination: held-out questions must not appear in seed examples or in the generated training data.

We compare word n-grams after normalisation (lower case, letters and digits only). A held-out question is
*contaminated* by a training text when either
- the training text contains the whole normalised question (any length), or
- at least `ratio` (default 0.5) of the question's word trigrams, and at least `min_shared` (default 3) of
  them, occur in one sentence of the training text (a near-paraphrase with the same wording), or
- the two share any run of `long_n` (default 8) words (the GPT-3 style long n-gram test, for long questions).

The `min_shared` floor keeps short questions from matching on a topic phrase alone ("the town of Kelderwick"
shares 2 of the 4 trigrams of "Who founded the town of Kelderwick?"), so the check catches copies and light
rewordings, not texts that merely share a topic.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

_WORD = re.compile(r"[a-z0-9]+")
_SEGMENT = re.compile(r"(?<=[?.!])\s+|\n+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def ngrams(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    if len(tokens) < n:
        return {tuple(tokens)} if tokens else set()
    return {tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)}


@dataclass
class Overlap:
    heldout: str
    text: str
    reason: str


@dataclass
class DecontaminationReport:
    checked_texts: int = 0
    overlaps: list[Overlap] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.overlaps

    def summary(self) -> str:
        if self.clean:
            return f"no held-out question overlaps the {self.checked_texts} training texts checked"
        return f"{len(self.overlaps)} overlap(s) between held-out questions and {self.checked_texts} texts"


class Decontaminator:
    """Index the held-out questions once, then test any number of training texts against them."""

    def __init__(self, heldout_questions: Iterable[str], ratio: float = 0.5, long_n: int = 8,
                 min_shared: int = 3) -> None:
        self.ratio = ratio
        self.min_shared = min_shared
        self.long_n = long_n
        self.questions = [q for q in heldout_questions if words(q)]
        self._tokens = [words(q) for q in self.questions]
        self._tri = [ngrams(t, 3) for t in self._tokens]
        self._long = [ngrams(t, long_n) if len(t) >= long_n else set() for t in self._tokens]

    def match(self, text: str) -> Overlap | None:
        """The first held-out question that `text` contaminates, with the reason; None when clean."""
        tokens = words(text)
        if not tokens:
            return None
        joined = " " + " ".join(tokens) + " "
        segments = [ngrams(seg, 3) for seg in (words(s) for s in _SEGMENT.split(text)) if seg]
        text_long = ngrams(tokens, self.long_n)
        for question, q_tokens, q_tri, q_long in zip(self.questions, self._tokens, self._tri, self._long,
                                                     strict=True):
            if " " + " ".join(q_tokens) + " " in joined:
                return Overlap(question, text, "contains the whole question")
            if q_long and q_long & text_long:
                return Overlap(question, text, f"shares a {self.long_n}-word run")
            for seg_tri in segments:  # sentence by sentence, so a question inside a long prompt is found
                shared = len(q_tri & seg_tri)
                if q_tri and shared / len(q_tri) >= self.ratio and shared >= min(self.min_shared, len(q_tri)):
                    return Overlap(question, text, f"shares {shared}/{len(q_tri)} word trigrams")
        return None

    def check(self, texts: Iterable[str]) -> DecontaminationReport:
        report = DecontaminationReport()
        for text in texts:
            report.checked_texts += 1
            overlap = self.match(text)
            if overlap is not None:
                report.overlaps.append(overlap)
        return report


def user_texts(row: dict) -> list[str]:
    """The user turns of a `messages`-format training row (the place where questions live)."""
    messages = row.get("messages") or []
    return [m.get("content", "") for m in messages if isinstance(m, dict) and m.get("role") == "user"]
