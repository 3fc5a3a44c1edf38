"""Question files of the key-facts benchmark: held-out questions about new knowledge, or a general check.

Format (YAML):

    version: 1
    leaf: knowledge/science/chemistry/elements   # optional: the leaf the questions are about
    questions:
      - question: Who discovered oxygen?
        answer: Carl Wilhelm Scheele and Joseph Priestley.   # optional reference, shown to the judge
        key_facts: [[Scheele, Priestley]]                    # every entry must appear; a list = accepted spellings

An answer counts as correct when it contains every key fact (`labrador.eval.keyfacts`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labrador.errors import DataError
from labrador.files import read_yaml


@dataclass(frozen=True)
class CheckQuestion:
    question: str
    key_facts: list[str | list[str]]
    answer: str | None = None


@dataclass(frozen=True)
class QuestionSet:
    path: Path
    leaf: str | None
    questions: list[CheckQuestion]


def _fact(value: Any, where: str) -> str | list[str]:
    if isinstance(value, str | int | float) and not isinstance(value, bool) and str(value).strip():
        return str(value)
    if isinstance(value, list) and value and all(isinstance(v, str | int | float) and str(v).strip()
                                                 for v in value):
        return [str(v) for v in value]
    raise DataError(f"{where}: a key fact must be a non-empty text or a list of accepted spellings, "
                    f"not {value!r}.")


def load_question_set(path: Path) -> QuestionSet:
    """Read and check a question file; DataError naming the file and the question number when wrong."""
    if not path.is_file():
        raise DataError(f"{path}: question file not found.")
    raw = read_yaml(path)
    if not isinstance(raw, dict) or not isinstance(raw.get("questions"), list) or not raw["questions"]:
        raise DataError(f"{path}: expected a mapping with a non-empty 'questions' list "
                        "(each item: question, key_facts, optional answer).")
    questions = []
    seen: set[str] = set()
    for n, item in enumerate(raw["questions"], 1):
        where = f"{path}: question {n}"
        if not isinstance(item, dict) or not isinstance(item.get("question"), str) or not item["question"].strip():
            raise DataError(f"{where}: each item needs a non-empty 'question' text.")
        facts = item.get("key_facts")
        if not isinstance(facts, list) or not facts:
            raise DataError(f"{where}: 'key_facts' must be a non-empty list (the facts a correct answer states).")
        text = item["question"].strip()
        if text.lower() in seen:
            raise DataError(f"{where}: the question {text!r} appears twice; remove one.")
        seen.add(text.lower())
        answer = item.get("answer")
        questions.append(CheckQuestion(text, [_fact(f, where) for f in facts],
                                       str(answer) if answer is not None else None))
    leaf = raw.get("leaf")
    return QuestionSet(path, str(leaf) if leaf else None, questions)
