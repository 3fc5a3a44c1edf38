"""Self-replay: the base student's own answers to general prompts, mixed into both training phases.

Tuning a small model on a few hundred rows about one topic teaches it a habit as well as the facts: answer
everything with that topic ("How many sides does a triangle have?" -> "The town is 120 km long."; measured on
the demo: general check 24/24 -> 7/24 without replay). Rows in which the model answers general prompts as it
did before training carry no new knowledge (the base model wrote them) and anchor its behaviour on everything
that is not the new topic. This is replay from the model itself (self-distillation), which needs no external
instruction dataset, so it works offline and for any student.

The prompts (package data `labrador/data/replay/general_prompts.yaml`, or `--replay-prompts FILE`) must not
hold an evaluation question: any prompt that the held-out or general-check questions' n-gram test matches is
dropped and counted.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from labrador.errors import DataError
from labrador.files import read_yaml
from labrador.sdg.quality import Decontaminator

BUNDLED = "general_prompts.yaml"


def bundled_prompts() -> Path:
    return Path(str(resources.files("labrador") / "data" / "replay" / BUNDLED))


def load_prompts(path: Path) -> list[str]:
    try:
        raw = read_yaml(path)
    except OSError as err:
        raise DataError(f"{path}: cannot read the replay prompts ({err}).") from None
    prompts = raw.get("prompts") if isinstance(raw, dict) else None
    if not isinstance(prompts, list) or not all(isinstance(p, str) and p.strip() for p in prompts):
        raise DataError(f"{path}: a replay prompt file needs a 'prompts:' list of non-empty strings.")
    return [p.strip() for p in prompts]


def clean_prompts(prompts: list[str], evaluation_questions: list[str]) -> tuple[list[str], list[str]]:
    """(kept, dropped): prompts that contain or closely reword an evaluation question are dropped."""
    checker = Decontaminator(evaluation_questions)
    kept = [p for p in prompts if checker.match(p) is None]
    return kept, [p for p in prompts if p not in kept]


def replay_rows(client: Any, prompts: list[str], system: str | None, max_tokens: int) -> list[dict[str, Any]]:
    """Greedy answers of `client` (the base student) as closed-book training rows (dataset `self_replay`).
    An empty answer is skipped: it would teach the model to say nothing."""
    from labrador.llm import SamplingParams

    params = SamplingParams(temperature=0.0, max_tokens=max_tokens)
    head = [{"role": "system", "content": system}] if system else []
    rows = []
    for n, prompt in enumerate(prompts):
        completion = client.chat([*head, {"role": "user", "content": prompt}], params)
        answer = completion.text.strip()
        if (completion.finish_reasons or [""])[0] == "length" and "." in answer:
            answer = answer[: answer.rindex(".") + 1]  # end on a whole sentence rather than mid-word
        if not answer:
            continue
        rows.append({"id": f"self-replay-{n}", "unmask": False,
                     "messages": [*head, {"role": "user", "content": prompt}, {"role": "assistant", "content": answer}],
                     "metadata": {"dataset": "self_replay", "leaf_kind": "replay"}})
    return rows

