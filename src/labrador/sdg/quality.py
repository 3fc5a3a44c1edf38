"""Quality guards applied to each leaf's generated rows before they are written.

- Bad answers: empty, a copy of the question (normalised similarity >= 0.9), longer than the token limit, or
  repetitive (20+ words of which fewer than 30% are distinct: a small teacher stuck in a loop).
- Exact duplicates: same normalised question (lowercase, punctuation removed, whitespace collapsed).
- Near duplicates: Jaccard similarity of the questions' content-word sets (normalised, English stop words and
  one-letter tokens removed) >= `threshold` (0.8 by default); the first occurrence is kept. Content words rather
  than character shingles because generated questions are short and templated: "What's the capital of France?"
  and "What is the capital of France?" are the same (1.0), while "...synonyms for the word small" and "...for
  the word tiny" are different questions (0.67).
- Seed echoes: a question is dropped when the share of its word n-grams (n=5; the whole question when it is
  shorter) that also occur in a test-split question is >= `decontam_threshold` (0.5)
  (`Decontaminator.contaminated`). The test split holds the human seed examples, so this removes rows where a
  small teacher just echoed a seed. Rows marked `_seed_question` (a seed's own question, answered by its
  document sentence: `seed_fact_questions`) are the seed by definition and are not checked against it.

`Decontaminator` is the project's one n-gram decontaminator: generation asks it whether a generated question
echoes a seed, data preparation (`labrador.prepare.decontam`) whether a training text contains a held-out
question (`Decontaminator.match`). It lives here, at the lowest layer that uses it, because generation must
drop seed echoes inside the duplicate guards (a dropped echo must not hide a later near-duplicate) and sdg
does not import `labrador.prepare`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from labrador.sdg.chunking import approx_tokens

_PUNCT = re.compile(r"[^\w\s]")
_SPACE = re.compile(r"\s+")
PLACEHOLDERS = {"<question>", "<answer>", "question", "answer", "...", "n/a"}


def normalize(text: str) -> str:
    return _SPACE.sub(" ", _PUNCT.sub(" ", text.lower())).strip()


def shingles(text: str, k: int = 4) -> set[str]:
    norm = normalize(text)
    return {norm[i:i + k] for i in range(max(1, len(norm) - k + 1))} if norm else set()


STOP_WORDS = frozenset(
    "a an the of to in on at for by with from and or but is are was were be been being do does did what which who "
    "whom whose when where why how that this these those it its as into about can could would should will shall "
    "may might must has have had there their they them he she his her you your we our i me my".split())


def content_words(text: str) -> set[str]:
    return {w for w in normalize(text).split() if len(w) > 1 and w not in STOP_WORDS}


def jaccard(a: set[str], b: set[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


_WORD = re.compile(r"[a-z0-9]+")
_SEGMENT = re.compile(r"(?<=[?.!])\s+|\n+")


def words(text: str) -> list[str]:
    """The held-out test's tokens: lower-case runs of ASCII letters and digits."""
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
    """Index some questions once, then test any number of texts against them, in one of two ways.

    `contaminated(question)` (generation, against the seed questions): the share of the generated question's
    word `n`-grams found among all indexed questions' n-grams is >= `threshold`.

    `match(text)` (preparation, against held-out questions): the first indexed question that the text
    contaminates, when either the text contains the whole normalised question (any length); or at least
    `ratio` of the question's word trigrams, and at least `min_shared` of them, occur in one sentence of the
    text (a near-paraphrase with the same wording); or the two share any run of `long_n` words (the GPT-3
    style long n-gram test, for long questions). The `min_shared` floor keeps short questions from matching on
    a topic phrase alone ("the town of Springfield" shares 2 of the 4 trigrams of "Who founded the town of
    Springfield?"), so the check catches copies and light rewordings, not texts that merely share a topic.
    """

    def __init__(self, questions: Iterable[str], n: int = 5, threshold: float = 0.5, *, ratio: float = 0.5,
                 long_n: int = 8, min_shared: int = 3) -> None:
        questions = list(questions)
        self.n, self.threshold = n, threshold
        self.grams: set[tuple[str, ...]] = set()
        for question in questions:
            self.grams |= ngrams(normalize(question).split(), n)
        self.ratio, self.min_shared, self.long_n = ratio, min_shared, long_n
        self.questions = [q for q in questions if words(q)]
        self._tokens = [words(q) for q in self.questions]
        self._tri = [ngrams(t, 3) for t in self._tokens]
        self._long = [ngrams(t, long_n) if len(t) >= long_n else set() for t in self._tokens]

    def contaminated(self, question: str) -> bool:
        grams = ngrams(normalize(question).split(), self.n)
        return (len(grams & self.grams) / len(grams) if grams else 0.0) >= self.threshold

    def match(self, text: str) -> Overlap | None:
        """The first indexed question that `text` contaminates, with the reason; None when clean."""
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


def answer_problem(question: str, answer: str, max_tokens: int,
                   count: Callable[[str], int] = approx_tokens) -> str | None:
    """Why an answer must be dropped ('empty', 'echo', 'too_long', 'repetitive'), or None when it is fine."""
    norm_answer = normalize(answer)
    if not norm_answer or answer.strip().lower() in PLACEHOLDERS:
        return "empty"
    norm_question = normalize(question)
    if norm_answer == norm_question or jaccard(shingles(question), shingles(answer)) >= 0.9:
        return "echo"
    if count(answer) > max_tokens:
        return "too_long"
    words = norm_answer.split()
    if len(words) >= 20 and len(set(words)) < 0.3 * len(words):
        return "repetitive"  # a small teacher stuck in a loop ("Timmy, Timmy, Timmy, ...")
    return None


def guard_rows(rows: list[dict[str, Any]], decontaminator: Decontaminator, *, max_answer_tokens: int,
               threshold: float = 0.8, question_key: str = "question",
               answer_key: str = "response") -> tuple[list[dict[str, Any]], Counter[str]]:
    """Apply every guard in order; returns the kept rows and a count of drops per reason."""
    dropped: Counter[str] = Counter()
    kept: list[dict[str, Any]] = []
    seen_exact: set[str] = set()
    seen_shingles: list[set[str]] = []
    for row in rows:
        question, answer = str(row.get(question_key) or ""), str(row.get(answer_key) or "")
        if not normalize(question) or question.strip().lower() in PLACEHOLDERS:
            dropped["empty_question"] += 1
            continue
        problem = answer_problem(question, answer, max_answer_tokens)
        if problem:
            dropped[f"{problem}_answer"] += 1
            continue
        key = normalize(question)
        if key in seen_exact:
            dropped["duplicate"] += 1
            continue
        grams = content_words(question) or {key}
        if any(jaccard(grams, other) >= threshold for other in seen_shingles):
            dropped["near_duplicate"] += 1
            continue
        if not row.get("_seed_question") and decontaminator.contaminated(question):
            dropped["contaminated"] += 1
            continue
        seen_exact.add(key)
        seen_shingles.append(grams)
        kept.append(row)
    return kept, dropped
