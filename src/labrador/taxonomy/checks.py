"""The rules a JSON Schema cannot express: right tree for the content, grounded vs freeform skills,
duplicate questions, seed example size, and turning a valid file into a ``Leaf``.

Every function tolerates wrongly typed data (the schema reports those); it only looks at what is well formed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from labrador.taxonomy.models import DocumentRef, Leaf, LeafKind, QnA, SeedExample
from labrador.taxonomy.schema import duplicate_indexes
from labrador.yamlnodes import PathKey


class Reporter(Protocol):
    def add(self, severity: str, message: str, line: int = 1, column: int = 1,
            yaml_path: str | None = None) -> None: ...

    def at(self, severity: str, path: PathKey, message: str, *, key: bool = False) -> None: ...


def _seeds(data: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    seeds = data.get("seed_examples")
    if not isinstance(seeds, list):
        return []
    return [(i, s) for i, s in enumerate(seeds) if isinstance(s, dict)]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def knowledge_evidence(data: dict[str, Any]) -> list[str]:
    found = [f"'{k}'" for k in ("document", "document_outline") if k in data]
    if any("questions_and_answers" in s for _, s in _seeds(data)):
        found.append("seed examples with 'questions_and_answers'")
    return found


def schema_name(tree: str | None, data: dict[str, Any]) -> str:
    if tree == "knowledge" or (tree is None and knowledge_evidence(data)):
        return "knowledge"
    return "compositional_skills"  # foundational skills follow the same schema


def wrong_tree(report: Reporter, data: dict[str, Any], tree: str, version: int) -> bool:
    """Report a knowledge file in a skills tree (or the reverse); True when found, as the schema would only
    repeat the same mistake key by key."""
    if tree != "knowledge":
        evidence = knowledge_evidence(data)
        if evidence:
            report.add("error", f"This file is under {tree}/, so it must follow the skill format "
                       "(task_description, and seed examples with question and answer), but it looks like a "
                       f"knowledge file: it has {' and '.join(evidence)}. Move its folder under knowledge/, or "
                       "rewrite it as a skill.")
            return True
        return False
    seeds = _seeds(data)
    if (version >= 3 and "document" not in data and "task_description" in data
            and seeds and all("question" in s for _, s in seeds)):
        report.add("error", "This file is under knowledge/, so it must follow the knowledge format (domain, "
                   "document, document_outline, and seed examples with context and questions_and_answers), but "
                   "it looks like a skill: it has 'task_description' and seed examples with 'question' and "
                   "no 'document'. Move its folder under compositional_skills/, or rewrite it as knowledge.")
        return True
    return False


def deprecation_message(version: int, schema_name: str) -> str:
    how = "no 'version' key" if version == 1 else "'version: 2'"
    if schema_name == "knowledge":
        todo = ("add 'version: 3', 'document_outline', group the questions under seed examples that each have a "
                "'context' and at least 3 'questions_and_answers', and remove 'task_description'")
    else:
        todo = "add 'version: 3' and make sure there are at least 5 different seed examples"
    return (f"This file uses taxonomy format version {version} ({how}), which is deprecated: it is still read, "
            f"but please update it to version 3: {todo}. See docs/taxonomy.md.")


def leaf_kind(report: Reporter, data: dict[str, Any], tree: str | None, rel: str,
              schema_name: str) -> LeafKind | None:
    if schema_name == "knowledge":
        return "knowledge"
    seeds = _seeds(data)
    with_context = [i for i, s in seeds if "context" in s]
    under_grounded = rel.split("/")[:2] == ["compositional_skills", "grounded"]
    if under_grounded:
        for i, seed in seeds:
            if "context" not in seed:
                report.at("error", ("seed_examples", i), f"Seed example {i + 1} has no 'context'. This file "
                          "is under compositional_skills/grounded/, where every seed example needs the text its "
                          "answer is based on; add a 'context', or move the folder out of grounded/.")
        return "grounded_skill"
    if not with_context:
        return "freeform_skill"
    if len(with_context) < len(seeds):
        numbers = ", ".join(str(i + 1) for i in with_context)
        report.at("error", ("seed_examples",), f"Only some seed examples ({numbers}) have a 'context'. A skill "
                  "is either grounded (every seed example has a context) or freeform (none has); add the "
                  "missing contexts or remove these.")
        return None
    if tree == "compositional_skills":
        report.at("warning", ("seed_examples",), "Every seed example has a 'context', so this skill is treated "
                  "as a grounded skill, but its folder is not under compositional_skills/grounded/; move it "
                  "there so the tree says what it is.")
    return "grounded_skill"


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _copies(items: list[Any]) -> set[int]:
    """Indexes of entries that are exact copies of an earlier one (the schema's uniqueItems reports those)."""
    return {later for _, later in duplicate_indexes(items)}


def duplicate_questions(report: Reporter, data: dict[str, Any]) -> None:
    """Same question (ignoring case and spacing) twice for the same context: an error within one seed
    example's list, a warning across seed examples (InstructLab accepts those, and its own valid fixture has
    one). Exact copies of a whole entry are left to the schema's uniqueItems message (looked for only when a
    repeat is found: it costs a JSON dump)."""
    seeds = data.get("seed_examples")
    if not isinstance(seeds, list):
        return
    seen: dict[tuple[str, str], tuple[int, ...]] = {}
    repeats: list[tuple[PathKey, tuple[int, ...], tuple[int, ...], bool]] = []

    def check(path: PathKey, context: str, question: Any, where: tuple[int, ...]) -> None:
        if isinstance(question, str) and question.strip():
            key = (context, _norm(question))
            if key in seen:
                repeats.append((path, where, seen[key], bool(context)))
            else:
                seen[key] = where

    for i, seed in _seeds(data):
        context = _norm(seed["context"]) if isinstance(seed.get("context"), str) else ""
        check(("seed_examples", i, "question"), context, seed.get("question"), (i,))
        qnas = seed.get("questions_and_answers")
        for j, qna in enumerate(qnas if isinstance(qnas, list) else []):
            if isinstance(qna, dict):
                check(("seed_examples", i, "questions_and_answers", j, "question"), context, qna.get("question"),
                      (i, j))
    if not repeats:
        return
    copied_seeds = _copies(seeds)
    for path, where, first, has_context in repeats:
        if where[0] in copied_seeds:
            continue
        if len(where) == 2 and where[1] in _copies(seeds[where[0]]["questions_and_answers"]):
            continue
        if where[0] == first[0]:
            report.at("error", path, f"This question repeats the question of {_where(first)}; the questions of "
                      "one seed example must be different, so reword it or remove it.")
        else:
            same = " for the same context" if has_context else ""
            report.at("warning", path, f"This question repeats the question of {_where(first)}{same}; it is "
                      "allowed, but the teacher model sees the same example twice, so consider rewording it.")


def _where(where: tuple[int, ...]) -> str:
    if len(where) == 1:
        return f"seed example {where[0] + 1}"
    return f"seed example {where[0] + 1}, question {where[1] + 1}"


def seed_sizes(report: Reporter, data: dict[str, Any], rule: dict[str, Any],
               estimate: Callable[[str], int]) -> None:
    """Flag context + question + answer estimated above the limit: such a seed may not fit a teacher prompt."""
    if rule["level"] == "off":
        return
    limit = rule["max"]
    for i, seed in _seeds(data):
        context = seed.get("context") if isinstance(seed.get("context"), str) else ""
        pairs: list[tuple[PathKey, str, Any, Any]] = []
        if "question" in seed or "answer" in seed:
            pairs.append((("seed_examples", i), f"Seed example {i + 1}", seed.get("question"), seed.get("answer")))
        qnas = seed.get("questions_and_answers")
        for j, qna in enumerate(qnas if isinstance(qnas, list) else []):
            if isinstance(qna, dict):
                pairs.append((("seed_examples", i, "questions_and_answers", j),
                              f"Seed example {i + 1}, question {j + 1},", qna.get("question"), qna.get("answer")))
        for path, label, question, answer in pairs:
            parts = [context, question if isinstance(question, str) else "", answer if isinstance(answer, str) else ""]
            tokens = estimate("\n".join(p for p in parts if p))
            if tokens > limit:
                report.at(rule["level"], path, f"{label} is about {tokens} tokens long (context + question + "
                          f"answer), over the limit of {limit}, so it may not fit in the teacher model's prompt; "
                          "shorten the context or the answer.")


def build_leaf(data: dict[str, Any], qna_path: Path, rel: str, kind: LeafKind, version: int) -> Leaf:
    """The Leaf of a file that passed every check (so the types are known to be right)."""
    seeds = []
    for _, seed in _seeds(data):
        qnas = [QnA(q["question"], q["answer"]) for q in seed.get("questions_and_answers", [])]
        if kind == "knowledge" and not qnas and "question" in seed:  # v1/v2 knowledge: one Q&A per seed
            qnas = [QnA(seed["question"], seed["answer"])]
        seeds.append(SeedExample(question=seed.get("question"), answer=seed.get("answer"),
                                 context=seed.get("context"), questions_and_answers=qnas))
    doc = data.get("document")
    document = DocumentRef(repo=doc.get("repo"), commit=doc.get("commit"), patterns=list(doc["patterns"]),
                           folder=doc.get("folder")) if isinstance(doc, dict) else None
    rel_dir = rel.rsplit("/", 1)[0] if "/" in rel else rel
    return Leaf(
        qna_path=Path(os.path.abspath(qna_path)),
        rel_path=rel,
        name=rel_dir.replace("/", "->"),
        kind=kind,
        version=version,
        created_by=str(data["created_by"]),
        domain=_text(data.get("domain")),
        task_description=_text(data.get("task_description")),
        document_outline=_text(data.get("document_outline")),
        seed_examples=seeds,
        document=document,
    )
