"""LLM-as-a-judge: the published MT-Bench single-answer prompts and rating parsing.

The prompts are data (FastChat's `judge_prompts.jsonl`), read from the MT-Bench data dir. A judgment whose
text has no rating in `[[x]]` form (or, failing that, `[x]`) inside the allowed range is *unparsable*: it is
kept in the results with score None and counted, never turned into a number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from labrador.errors import DataError
from labrador.eval.calls import Model
from labrador.files import iter_objects
from labrador.llm import SamplingParams

_DOUBLE = re.compile(r"\[\[(\d+\.?\d*)\]\]")
_SINGLE = re.compile(r"\[(\d+\.?\d*)\]")

SINGLE_PROMPTS = ("single-v1", "single-math-v1", "single-v1-multi-turn", "single-math-v1-multi-turn")


def parse_rating(text: str, low: float, high: float) -> float | None:
    """The first `[[x]]` rating, else the first `[x]`; None when absent or outside [low, high]."""
    for pattern in (_DOUBLE, _SINGLE):
        match = pattern.search(text)
        if match:
            value = float(match.group(1))
            return value if low <= value <= high else None
    return None


@dataclass(frozen=True)
class JudgePrompt:
    name: str
    system_prompt: str
    prompt_template: str

    def messages(self, **fields: str) -> list[dict[str, str]]:
        try:
            user = self.prompt_template.format(**fields)
        except KeyError as err:
            raise DataError(f"judge prompt {self.name!r} needs the field {err} that the evaluator did not "
                            "provide; check judge_prompts.jsonl.") from None
        return [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": user}]


def load_judge_prompts(path: Path) -> dict[str, JudgePrompt]:
    """judge_prompts.jsonl -> name -> prompt; the four single-answer prompts must be present."""
    if not path.is_file():
        raise DataError(f"{path}: judge prompts file not found. Pass --data-dir pointing at the MT-Bench data "
                        "(question.jsonl, judge_prompts.jsonl, reference_answer/gpt-4.jsonl).")
    prompts: dict[str, JudgePrompt] = {}
    for n, row in iter_objects(path, "a judge prompt (name, system_prompt, prompt_template)"):
        try:
            prompts[row["name"]] = JudgePrompt(row["name"], row["system_prompt"], row["prompt_template"])
        except KeyError as err:
            raise DataError(f"{path}:{n}: not a judge prompt (need name, system_prompt, prompt_template): "
                            f"missing {err}.") from None
    missing = [name for name in SINGLE_PROMPTS if name not in prompts]
    if missing:
        raise DataError(f"{path}: missing judge prompts {', '.join(missing)}; use FastChat's judge_prompts.jsonl.")
    return prompts


@dataclass
class Judgment:
    score: float | None
    text: str
    error: str | None = None

    def to_json(self) -> dict:
        return {"score": self.score, "judgment": self.text, "error": self.error}


class Judge:
    """Greedy judge calls (temperature 0) through the cache; a failing call becomes an error record."""

    def __init__(self, model: Model, max_tokens: int = 2048) -> None:
        self.model = model
        self.params = SamplingParams(temperature=0.0, max_tokens=max_tokens)

    def rate(self, messages: list[dict[str, str]], low: float, high: float) -> Judgment:
        try:
            text = self.model.chat(messages, self.params)
        except Exception as err:  # noqa: BLE001 - one bad call (e.g. prompt too long) must not end the run
            return Judgment(None, "", f"{type(err).__name__}: {err}")
        return Judgment(parse_rating(text, low, high), text)
