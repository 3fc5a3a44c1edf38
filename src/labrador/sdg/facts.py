"""Facts of a knowledge document: its sentences, made self-contained, and checks that text is grounded in it.

Used by the knowledge *facts* pipeline (`knowledge_facts.yaml`): the teacher writes questions for each fact,
and the fact sentence itself is the answer. A small teacher writes a passable question far more often than a
correct answer (SmolLM2-135M put 10 of the sample's 12 held-out facts into no answer at all), so letting the
document supply the answers teaches every fact the document states, word for word.

- `split_facts`: the sentences of a markdown chunk. Headings are dropped; a table row becomes one sentence
  ("Harrow Kiln Cooperative: Founded 1921; Workers 64."); a sentence that opens with a pronoun ("She is the
  first mayor...") is joined to the sentence before it, so the answer still says who "she" is.
- `grounded_in`: every number and capitalised name of a text occurs in a source (the first word excepted).
- `question_fits`: a generated question is kept when it is a question, shares a content word with its fact
  and names nothing the document does not.
"""

from __future__ import annotations

import re

from labrador.sdg.chunking import markdown_segments
from labrador.sdg.quality import content_words

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[A-Z0-9\"'(])")
_NAME_OR_NUMBER = re.compile(r"\d[\d,.]*\d|\d|[A-Z][\w-]*")
_PRONOUN_START = re.compile(r"^(it|its|it's|she|he|her|his|they|their|them|this|these|those|there|today)\b",
                            re.IGNORECASE)
_MARKUP = re.compile(r"[*_`]+")


def _sentences(paragraph: str) -> list[str]:
    text = " ".join(_MARKUP.sub("", paragraph).split())
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def _table_sentences(table: str) -> list[str]:
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in table.splitlines() if "|" in line]
    rows = [r for r in rows if not all(set(c) <= set("-: ") for c in r)]  # drop the |---| separator row
    if len(rows) < 2:
        return []
    header, body = rows[0], rows[1:]
    out = []
    for row in body:
        if not row or not row[0]:
            continue
        pairs = [f"{h} {v}" for h, v in zip(header[1:], row[1:], strict=False) if v]
        out.append(f"{row[0]}: {'; '.join(pairs)}." if pairs else f"{row[0]}.")
    return out


def split_facts(text: str, min_words: int = 4) -> list[str]:
    """The self-contained fact sentences of a markdown text, in order (see the module docstring)."""
    facts: list[str] = []
    for segment in markdown_segments(text):
        if segment.kind == "heading" or segment.kind == "fence":
            continue
        if segment.kind == "table":
            facts += _table_sentences(segment.text)
            continue
        previous = ""
        for sentence in _sentences(segment.text):
            if len(sentence.split()) < min_words or sentence[:1].islower():
                continue  # too short to hold a fact, or the tail of a sentence cut by a chunk's overlap
            if previous and _PRONOUN_START.match(sentence):
                sentence = f"{previous} {sentence}"
                if facts and facts[-1] == previous:
                    facts.pop()  # the joined pair replaces the bare antecedent, which it contains
            facts.append(sentence)
            previous = sentence
    return facts


def names_and_numbers(text: str) -> list[str]:
    return [n.rstrip(".,") for n in _NAME_OR_NUMBER.findall(text)]


def grounded_in(text: str, source: str) -> bool:
    """True when every number and capitalised word of `text` (past its first word) occurs in `source`.

    A cheap faithfulness check: a small teacher often invents names and dates ("the Great Flood of 2020").
    """
    names = names_and_numbers(text)
    if text[:1].isupper():
        names = names[1:]
    words = set(_NAME_OR_NUMBER.findall(source)) | set(names_and_numbers(source))
    return all(n in words for n in names)


def question_fits(question: str, fact: str, source: str, min_shared: int = 1) -> str | None:
    """Why a generated question must be dropped ('not_a_question', 'off_topic', 'ungrounded'), or None."""
    question = question.strip()
    if len(question) < 10 or not question.endswith("?"):
        return "not_a_question"
    if len(content_words(question) & content_words(fact)) < min_shared:
        return "off_topic"
    if not grounded_in(question, source):
        return "ungrounded"
    return None
