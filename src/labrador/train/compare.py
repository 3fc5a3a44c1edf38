"""`ilab model test`: the test split's questions answered by the base and the trained model (greedy)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labrador.errors import DataError, LabradorError
from labrador.train import data as data_mod
from labrador.train import student


@dataclass
class Answer:
    question: str
    prompt: list[dict[str, str]]
    reference: str
    base: str = ""
    trained: str = ""


def best_checkpoint(run_dir: Path) -> Path:
    """The best checkpoint of the last finished phase recorded in a run directory's journal."""
    journal_path = run_dir / "run_state.json"
    if not journal_path.is_file():
        raise LabradorError(f"{run_dir} holds no training run (no run_state.json); train first with "
                            "`ilab model train` or pass --model-path with a checkpoint directory.")
    phases = json.loads(journal_path.read_text())["phases"]
    best = [p["best"] for p in phases.values() if p.get("best")]
    if not best:
        raise LabradorError(f"The run in {run_dir} has no checkpoint yet; let it finish an epoch (--resume).")
    return Path(best[-1]["path"])


def read_questions(files: list[Path], limit: int | None) -> list[Answer]:
    questions = []
    for file in files:
        for conv in data_mod.read_conversations(file):
            last = max(i for i, m in enumerate(conv.messages) if m["role"] == "assistant")
            prompt = conv.messages[:last]
            users = [m["content"] for m in prompt if m["role"] == "user"]
            if not users:
                raise DataError(f"{file}:{conv.line}: the test conversation has no user question before its answer.")
            questions.append(Answer(users[-1], prompt, conv.messages[last]["content"]))
    return questions[:limit] if limit else questions


def _generate(model: Any, tokenizer: Any, prompt: list[dict[str, str]], max_new_tokens: int) -> str:
    import torch

    ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, return_tensors="pt",
                                        return_dict=True).to(model.device)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip()


def answer_all(base: str, trained: Path, questions: list[Answer], max_new_tokens: int) -> list[Answer]:
    """Greedy answers from both models; one model in memory at a time."""
    import torch

    torch.set_grad_enabled(False)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    for attr, source in (("base", student.resolve_student(base)), ("trained", student.resolve_student(trained))):
        tokenizer = student.load_tokenizer(source)
        model = student.load_model(source, device).eval()
        for answer in questions:
            setattr(answer, attr, _generate(model, tokenizer, answer.prompt, max_new_tokens))
        del model
    return questions
