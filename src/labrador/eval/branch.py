"""Questions built from a taxonomy branch: the changed leaves (same diff logic as `ilab taxonomy diff`).

- mt_bench_branch: one question per seed example (skills) or per seed Q&A pair (knowledge), the seed answer
  being the judge's reference. Grounded skills get their context prepended the way InstructLab does; knowledge
  questions are asked *without* the context, because the point is whether the model learned the facts.
- mmlu_branch (when no task files are given): each knowledge Q&A pair becomes a 4-choice question whose
  three wrong choices are other answers of the same leaf (then of other leaves), placed deterministically.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

from labrador.errors import TaxonomyError
from labrador.eval.mt_bench import MTQuestion
from labrador.eval.multiple_choice import MCQuestion

GROUNDED_TEMPLATE = "Given the context below:\n{context}\nAnswer the following question: {question}"


def leaf_label(leaf) -> str:
    """The leaf's directory relative to the taxonomy root, e.g. knowledge/science/astronomy."""
    rel = str(getattr(leaf, "rel_path", "") or getattr(leaf, "name", ""))
    return rel[: -len("/qna.yaml")] if rel.endswith("/qna.yaml") else rel


def task_name(leaf) -> str:
    """File-name-safe form of the leaf label (InstructLab's mmlubench_<leaf> naming)."""
    return leaf_label(leaf).strip("/").replace("/", "_")


def changed_leaves(taxonomy_path: Path, base: str) -> list:
    """Valid leaves changed since `base` (`ilab taxonomy diff` logic); a clear error when there are none."""
    from labrador.taxonomy import load_leaves

    root = Path(taxonomy_path)
    leaves = load_leaves(root, base)
    if not leaves:
        raise TaxonomyError(f"{root}: no changed qna.yaml files against {base!r}; nothing to evaluate. Add or "
                            "change a leaf on your branch, or pass another --taxonomy-base.")
    return leaves


def mt_questions(leaves: list) -> list[MTQuestion]:
    out: list[MTQuestion] = []
    for leaf in leaves:
        label = leaf_label(leaf)
        n = 0
        for seed in leaf.seed_examples:
            if leaf.kind == "knowledge":
                pairs = [(qa.question, qa.answer) for qa in seed.questions_and_answers]
            else:
                question = seed.question or ""
                if seed.context:
                    question = GROUNDED_TEMPLATE.format(context=seed.context.strip(), question=question.strip())
                pairs = [(question, seed.answer or "")]
            for question, answer in pairs:
                n += 1
                out.append(MTQuestion(id=f"{label}#{n}", category=leaf.kind, turns=(question.strip(),),
                                      reference=(answer.strip(),), use_reference=True, group=label))
    return out


def _stable_rng(text: str) -> random.Random:
    return random.Random(int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big"))


def mc_tasks(leaves: list) -> list[MCQuestion]:
    """4-choice questions from the knowledge leaves' seed Q&A (subject = task name); pairs without three
    distinct wrong answers available anywhere in the branch are skipped."""
    per_leaf = {task_name(leaf): [(qa.question.strip(), qa.answer.strip()) for seed in leaf.seed_examples
                                  for qa in seed.questions_and_answers]
                for leaf in leaves if leaf.kind == "knowledge"}
    everything = [a for pairs in per_leaf.values() for _, a in pairs]
    questions: list[MCQuestion] = []
    for task, pairs in per_leaf.items():
        own = [a for _, a in pairs]
        for i, (question, answer) in enumerate(pairs, 1):
            rng = _stable_rng(f"{task}\n{question}")
            seen = {answer.casefold()}
            wrong: list[str] = []
            for pool in (own, everything):
                candidates = [a for a in dict.fromkeys(pool) if a.casefold() not in seen]
                rng.shuffle(candidates)
                for cand in candidates[: 3 - len(wrong)]:
                    wrong.append(cand)
                    seen.add(cand.casefold())
            if len(wrong) < 3:
                continue
            position = rng.randrange(4)
            choices = wrong[:position] + [answer] + wrong[position:]
            questions.append(MCQuestion(question, tuple(choices), position, subject=task, id=f"{task}/{i}"))
    if not questions:
        raise TaxonomyError("The changed leaves have no knowledge Q&A pairs with three distinct wrong answers "
                            "available; mmlu_branch needs knowledge leaves (or pass --tasks-dir with "
                            "mmlubench_<leaf>.jsonl files).")
    return questions
