"""What preparation does to one training row: grounding filter, closed-book copy, seed rows, checked texts."""

from __future__ import annotations

from typing import Any

from labrador.sdg.english import grounded_in, supported_in


def grounded_row(row: dict[str, Any]) -> bool:
    """False for a knowledge row whose answer names a thing or a number its document does not (`grounded_in`),
    or, for a Q&A row, has a sentence that no sentence of the document supports (`supported_in`): a small
    teacher's invented "facts" ("England is the capital of the United Kingdom and ten other states", "it was
    founded by a farmer named Hester Vane") would be taught as knowledge. The document is the user turn
    without its last paragraph, the question: "When did the Great Flood of 2020 occur?" must not ground "The
    Great Flood of 2020 took place in 2020.". Other rows, and fact rows (their answer is the document), are kept.
    """
    meta = row.get("metadata") or {}
    if meta.get("leaf_kind") != "knowledge" or meta.get("closed_book"):
        return True
    messages = row.get("messages") or []
    user = "\n".join(m.get("content", "") for m in messages if m.get("role") == "user")
    summary = "summary_kind" in meta  # summaries join several sentences of the document into one
    source = user if summary or "\n\n" not in user else user.rsplit("\n\n", 1)[0]
    answers = [m.get("content", "") for m in messages if m.get("role") == "assistant"]
    return all(grounded_in(a, source) and (summary or supported_in(a, source)) for a in answers)


def closed_book_copy(row: dict[str, Any]) -> dict[str, Any] | None:
    """A knowledge Q&A row asked without its document (the question is the user turn's last paragraph).

    Knowledge rows put the source chunk before the question, but users ask without the document; a copy of
    each Q&A with the question alone teaches the answer itself. Summary rows (no question) and answers that
    name things the source chunk does not (see `grounded_in`) give None.
    """
    meta = row.get("metadata") or {}
    if meta.get("leaf_kind") != "knowledge" or "summary_kind" in meta:
        return None
    messages = row.get("messages") or []
    users = [m for m in messages if m.get("role") == "user"]
    if len(users) != 1 or "\n\n" not in users[0]["content"]:
        return None
    source, question = (part.strip() for part in users[0]["content"].rsplit("\n\n", 1))
    answers = [m.get("content", "") for m in messages if m.get("role") == "assistant"]
    if not question or len(answers) != 1 or not grounded_in(answers[0], source):
        return None
    copied = [dict(m, content=question) if m is users[0] else dict(m) for m in messages]
    return {**{k: v for k, v in row.items() if k not in ("messages", "metadata", "id", "user")},
            "id": f"{row.get('id', '')}-closed-book", "messages": copied, "unmask": False,
            "metadata": {**meta, "dataset": "knowledge_closed_book"},
            **({"user": question} if "user" in row else {})}


def seed_rows(leaves: list[dict[str, Any]], system: str | None) -> list[dict[str, Any]]:
    """The contributors' own knowledge Q&A pairs as closed-book training rows (they are correct by definition)."""
    rows = []
    for leaf in leaves:
        for n, (question, answer) in enumerate(leaf.get("seed_qa", [])):
            messages = ([{"role": "system", "content": system}] if system else []) + [
                {"role": "user", "content": question}, {"role": "assistant", "content": answer}]
            rows.append({"id": f"seed-{leaf['rel_path']}-{n}", "messages": messages, "unmask": False,
                         "metadata": {"leaf": leaf["rel_path"], "leaf_kind": leaf["kind"], "dataset": "seed_qa"}})
    return rows


def user_texts(row: dict[str, Any]) -> list[str]:
    """The user turns of a `messages`-format training row (the place where questions live)."""
    messages = row.get("messages") or []
    return [m.get("content", "") for m in messages if isinstance(m, dict) and m.get("role") == "user"]


def checked_texts(row: dict[str, Any]) -> list[str]:
    """The texts of a training row that must not contain a held-out question: every message, except that a
    knowledge-facts row's answer is a sentence of the contributed document (which answers held-out questions
    by design), so only its user turn, the teacher's question, is checked."""
    if (row.get("metadata") or {}).get("closed_book"):
        return user_texts(row)
    return [m.get("content", "") for m in row.get("messages", []) if isinstance(m, dict)]


def leaf_seeds(leaf: Any) -> dict[str, Any]:
    """What preparation needs of a taxonomy leaf (`labrador.taxonomy.Leaf`): its seed texts, which must hold no
    held-out question, and its seed Q&A pairs (the seed rows), as JSON-able data."""
    texts = []
    for seed in leaf.seed_examples:
        texts += [t for t in (seed.question, seed.answer) if t]
        texts += [t for qa in seed.questions_and_answers for t in (qa.question, qa.answer)]
    return {"rel_path": leaf.rel_path, "kind": leaf.kind, "qna_path": str(leaf.qna_path), "seeds": texts,
            "seed_qa": [[qa.question, qa.answer] for seed in leaf.seed_examples for qa in seed.questions_and_answers]}
