"""A deterministic "key facts" scorer: what fraction of the expected facts does an answer state?

No judge model, so the score is cheap and exactly reproducible (used for held-out questions in the demo).

Normalisation, applied to the answer and to every key fact alike:
1. Unicode NFKD, accents dropped ("Kelderwîck" -> "kelderwick"), casefolded;
2. thousands separators between digits removed ("1,250" -> "1250");
3. every character that is not a letter or a digit becomes a space, whitespace runs collapse to one space.
A fact is present when its normalised form occurs in the normalised answer on word boundaries ("cat" is not
found in "concatenate"; "18 42" is found in "in 18.42 s"). A key fact given as a list is a set of synonyms:
it counts as present when any of them is.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from labrador.llm import LLMClient, SamplingParams

KeyFact = str | Sequence[str]

GREEDY = SamplingParams(temperature=0.0, max_tokens=256)
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


@dataclass
class KeyFactsResult:
    question: str
    answer: str
    score: float
    found: list[KeyFact]
    missing: list[KeyFact]
    id: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


def evaluate_questions(client: LLMClient, items: Iterable[dict],
                       params: SamplingParams = GREEDY,
                       system_prompt: str | None = None) -> list[KeyFactsResult]:
    """Ask `client` each item's `question` (greedy by default) and score the answer against `key_facts`.

    items: dicts with `question`, `key_facts` (list of str or list-of-synonyms) and optionally `id`.
    """
    results = []
    for item in items:
        messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
        messages.append({"role": "user", "content": item["question"]})
        answer = client.chat(messages, params).text
        facts = list(item["key_facts"])
        found = [f for f in facts if fact_present(answer, f)]
        missing = [f for f in facts if not fact_present(answer, f)]
        results.append(KeyFactsResult(item["question"], answer, score_answer(answer, facts), found, missing,
                                      item.get("id")))
    return results


def mean_score(results: Sequence[KeyFactsResult]) -> float:
    return sum(r.score for r in results) / len(results) if results else 0.0
