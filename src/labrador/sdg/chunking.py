"""Markdown-aware chunking of knowledge documents.

The splitter is markdown-it-py (already installed with rich): it parses the document into top-level blocks with
their source line ranges (headings, paragraphs, lists, tables, code fences, quotes). We pack whole blocks into
chunks of about `chunk_size` tokens, break preferably before headings, never inside a table or code fence
(one that is too big alone becomes its own chunk, or for huge tables is split by rows with the header
repeated), and carry `overlap` tokens of the previous chunk's last paragraph into the next. Each chunk that
does not start with a heading gets the nearest heading above it as a first line, so a question generated from
it still knows what the text is about.

Token counts come from the teacher's tokenizer when it has one (`count_tokens`), else a 4-characters-per-token
estimate.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

TokenCounter = Callable[[str], int]


def approx_tokens(text: str) -> int:
    return max(1, len(text) // 4) if text else 0


@dataclass
class Segment:
    text: str
    kind: str  # heading | table | fence | paragraph | list | other
    heading_level: int = 0


def markdown_segments(text: str) -> list[Segment]:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark").enable("table")
    lines = text.splitlines()
    segments: list[Segment] = []
    covered = 0
    for token in md.parse(text):
        if token.level != 0 or token.map is None or token.nesting == -1:
            continue
        start, end = token.map
        if start < covered:
            continue
        body = "\n".join(lines[start:end]).strip("\n")
        covered = end
        if not body.strip():
            continue
        kind = {"heading_open": "heading", "table_open": "table", "fence": "fence", "code_block": "fence",
                "paragraph_open": "paragraph", "bullet_list_open": "list",
                "ordered_list_open": "list"}.get(token.type, "other")
        level = int(token.tag[1]) if kind == "heading" and token.tag[:1] == "h" else 0
        segments.append(Segment(body, kind, level))
    return segments


def _split_long(segment: Segment, size: int, count: TokenCounter) -> list[Segment]:
    """Split one block bigger than the chunk size: tables by rows (header repeated), prose by sentences."""
    if segment.kind == "fence" or (segment.kind == "table" and count(segment.text) <= 3 * size):
        return [segment]  # keep code and moderately large tables whole: a cut one is useless
    if segment.kind == "table":
        rows = segment.text.splitlines()
        header, body = rows[:2], rows[2:]
        parts, current = [], list(header)
        for row in body:
            if len(current) > 2 and count("\n".join([*current, row])) > size:
                parts.append(Segment("\n".join(current), "table"))
                current = list(header)
            current.append(row)
        parts.append(Segment("\n".join(current), "table"))
        return parts
    pieces = re.split(r"(?<=[.!?])\s+", segment.text)
    parts, current_text = [], ""
    for piece in pieces:
        while count(piece) > size:  # a single run-on "sentence": cut by words
            words = piece.split()
            cut = max(1, len(words) * size // max(1, count(piece)))
            parts.append(Segment(" ".join(words[:cut]), segment.kind))
            piece = " ".join(words[cut:])
        candidate = f"{current_text} {piece}".strip()
        if current_text and count(candidate) > size:
            parts.append(Segment(current_text, segment.kind))
            candidate = piece
        current_text = candidate
    if current_text:
        parts.append(Segment(current_text, segment.kind))
    return parts


def _tail(text: str, tokens: int, count: TokenCounter) -> str:
    words = text.split()
    tail: list[str] = []
    for word in reversed(words):
        if count(" ".join([word, *tail])) > tokens:
            break
        tail.insert(0, word)
    return " ".join(tail)


def chunk_markdown(text: str, chunk_size: int = 500, overlap: int = 50,
                   count: TokenCounter = approx_tokens) -> list[str]:
    """Chunks of about `chunk_size` tokens (a kept-whole table or code block may be larger)."""
    segments: list[Segment] = []
    for segment in markdown_segments(text):
        segments.extend(_split_long(segment, chunk_size, count) if count(segment.text) > chunk_size else [segment])
    chunks: list[str] = []
    current: list[Segment] = []
    heading = ""  # the most recent heading line
    chunk_heading = ""  # the heading in force where the current chunk starts

    def flush() -> None:
        if not current or all(s.kind == "heading" for s in current):
            return
        body = "\n\n".join(s.text for s in current)
        if current[0].kind != "heading" and chunk_heading:
            body = f"{chunk_heading}\n\n{body}"
        chunks.append(body)

    for segment in segments:
        size_now = count("\n\n".join(s.text for s in current)) if current else 0
        new_section = segment.kind == "heading" and segment.heading_level <= 2 and size_now >= chunk_size // 2
        if current and (size_now + count(segment.text) > chunk_size or new_section):
            flush()
            last = current[-1]
            carry = _tail(last.text, overlap, count) if overlap and last.kind in ("paragraph", "list") else ""
            current = [Segment(carry, "paragraph")] if carry and segment.kind != "heading" else []
            chunk_heading = heading
        if not current:
            chunk_heading = heading
        if segment.kind == "heading":
            heading = segment.text.strip()
        current.append(segment)
    flush()
    return chunks
