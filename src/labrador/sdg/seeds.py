"""Turn a taxonomy leaf into the input table of its pipeline, and into its test split (the human seeds).

`--sdg-scale-factor` is the number of teacher samples per seed example:
- skills: one row per seed example, `n = scale` samples each; the row's own seed is always among the examples
  shown in the prompt, the others are sampled from the leaf (see LLMBlock).
- knowledge: one row per document chunk, paired with a seed example in rotation (its Q&A pairs are the
  examples); `n = ceil(scale * seeds / chunks)`, so the leaf gets about `scale * seeds` samples and every chunk
  is covered at least once.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from labrador.sdg.chunking import TokenCounter, approx_tokens, chunk_markdown
from labrador.sdg.table import Table


def _pair(question: str | None, answer: str | None, context: str | None) -> dict[str, str]:
    return {"question": (question or "").strip(), "answer": (answer or "").strip(),
            "context": (context or "").strip()}


def _seed_pairs(leaf: Any) -> list[list[dict[str, str]]]:
    """Each seed example's pairs: a knowledge seed's Q&A pairs (with its context), a skill seed itself."""
    if leaf.kind != "knowledge":
        return [[_pair(s.question, s.answer, s.context)] for s in leaf.seed_examples]
    return [[_pair(qa.question, qa.answer, s.context) for qa in s.questions_and_answers]
            for s in leaf.seed_examples]


def _base(leaf: Any) -> dict[str, Any]:
    return {"task_description": (leaf.task_description or leaf.document_outline or "").strip(),
            "domain": (leaf.domain or "").strip(), "document_outline": (leaf.document_outline or "").strip()}


def skill_table(leaf: Any, scale: int) -> Table:
    seeds = [pair for pairs in _seed_pairs(leaf) for pair in pairs]
    rows = []
    for index, seed in enumerate(seeds):
        others = [s for j, s in enumerate(seeds) if j != index]
        rows.append({**_base(leaf), "seed_question": seed["question"], "seed_answer": seed["answer"],
                     "seed_context": seed["context"], "_seed_index": index, "_num_samples": scale,
                     "_icl_seeds": [seed, *others]})
    return Table(rows)


def chunk_documents(documents: list[Any], chunk_size: int, overlap: int,
                    count: TokenCounter = approx_tokens) -> list[dict[str, Any]]:
    chunks = []
    for document in documents:
        for index, text in enumerate(chunk_markdown(document.text, chunk_size, overlap, count)):
            chunks.append({"source_document": str(document.path), "chunk_index": index, "document": text})
    return chunks


def knowledge_table(leaf: Any, chunks: list[dict[str, Any]], scale: int) -> Table:
    seeds = leaf.seed_examples
    n = max(1, math.ceil(scale * max(1, len(seeds)) / max(1, len(chunks))))
    by_seed = _seed_pairs(leaf)
    every_pair = [pair for pairs in by_seed for pair in pairs]  # all of them, also when chunks < seed examples
    rows = []
    for number, chunk in enumerate(chunks):
        seed_index = number % len(seeds) if seeds else None
        pairs = by_seed[seed_index] if seed_index is not None else []
        rows.append({**_base(leaf), **chunk, "raw_document": chunk["document"], "_seed_index": seed_index,
                     "_num_samples": n, "_icl_seeds": pairs, "_seed_pairs": every_pair})
    return Table(rows)


def test_examples(leaf: Any) -> list[dict[str, Any]]:
    """The leaf's human seed examples as (question, answer) pairs with the context in the user turn."""
    return [{"seed_index": index, **pair} for index, pairs in enumerate(_seed_pairs(leaf)) for pair in pairs]


def leaf_file_name(rel_path: str) -> str:
    """knowledge/science/planets/qna.yaml -> knowledge_science_planets (the node_datasets file name)."""
    path = Path(rel_path)
    if path.suffix in (".yaml", ".yml"):
        path = path.parent
    return path.as_posix().strip("/").replace("/", "_") or "leaf"
