"""English text rules: the sentences of a document made self-contained, the names and numbers they hold, and
checks that text is grounded in a document. Tuned on English prose (capitalised names, English stop words,
pronouns and question leads); a pipeline for another language names its own blocks and rules.

Used by the knowledge *facts* pipeline (`knowledge_facts.yaml`): the teacher writes questions for each fact,
and the fact sentence itself is the answer. A small teacher writes a passable question far more often than a
correct answer (SmolLM2-135M put 10 of the sample's 12 held-out facts into no answer at all), so letting the
document supply the answers teaches every fact the document states, word for word.

- `split_facts`: the sentences of a markdown chunk. Headings are dropped; a table row becomes one sentence
  ("Harrow Kiln Cooperative: Founded 1921; Workers 64."); a sentence that opens with a pronoun ("She is the
  first mayor...") is joined to the sentence before it, so the answer still says who "she" is.
- `grounded_in`: every number and capitalised name of a text occurs in a source (the first word excepted).
- `answer_spans`: the short answers a fact holds (names, years, counts, weekdays), each with the words a
  question about it starts with ("212 metres" -> "How many metres", "How"). The teacher is shown the answer and
  continues the lead: asked for "a question" about a town's founding sentence, SmolLM2-135M asked what the
  founder's trade is; shown "Answer: <the founder's name> / Question: What is the name of" it asked for the
  founder by name (docs/demo.md has the measured cases).
- `question_fits`: a generated question is kept when it is a question, shares a content word with its fact,
  names nothing the document does not, does not contain its own answer and is not answered better by another
  sentence of the document (`fits_other_fact`).
- `seed_fact`: the document sentence that a seed Q&A pair comes from, so the contributor's own questions are
  also answered with the whole sentence (a seed answer such as "The town was founded in 1742." leaves out the
  founder's name, which the sentence gives).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

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


_WEEKDAYS = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"}
_MONTHS = {"January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"}
_NUMBER_WORDS = {"two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
                 "thirteen", "fourteen", "fifteen", "twenty", "hundred"}
# Capitalised words that start sentences or clauses without naming anything.
_NOT_NAMES = {"The", "A", "An", "In", "On", "At", "By", "After", "Before", "Its", "It", "This", "These", "Two",
              "Other", "Today", "She", "He", "They", "Their", "There", "When", "Since", "From", "For", "Of", "And",
              "I", "We", "You", "His", "Her", "Our", "Your", "That", "Those", "As", "To", "With", "But", "If"}
_TOKEN = re.compile(r"\d[\d,.]*\d|\d|[\w'-]+|[^\w\s]")
_CONNECTORS = {"and", "of", "de", "du", "la", "le", "upon"}  # inside names: "Vane and Daughters"
_LEADS = {"year": ("In what year", "When"), "day": ("On which day", "When"), "name": ("What is the name of", "Which")}


def _is_name_word(word: str) -> bool:
    return word[:1].isupper() and word[:1].isalpha() and word not in _MONTHS


def _count(number: str, after: str) -> tuple[str, tuple[str, ...]]:
    """'212 metres' -> How many metres / How; a count of a plural noun names its noun."""
    if after.isalpha() and after.islower() and after.endswith("s") and len(after) > 3:
        return f"{number} {after}", (f"How many {after}", "How")
    return number, ("How many", "How")


def answer_spans(fact: str, topic: str = "") -> list[tuple[str, tuple[str, ...]]]:
    """The short answers of a fact sentence, in order, each with question leads (see the module docstring).

    Names are runs of capitalised words (the first word of a sentence or clause alone is its subject, not an
    answer); names made only of `topic` words (the leaf's document outline: the town's and its river's names) are
    left out, since every fact is about them. A number followed by a plural noun is a count of it.
    """
    topic_words = set(_TOKEN.findall(topic))
    tokens = _TOKEN.findall(fact)
    spans: list[tuple[str, tuple[str, ...]]] = []
    i = 0
    while i < len(tokens):
        word, after = tokens[i], tokens[i + 1] if i + 1 < len(tokens) else ""
        clause_start = i == 0 or tokens[i - 1] in {".", ":", ";", "!", "?"}
        if word[0].isdigit():
            if re.fullmatch(r"1\d{3}|20\d{2}", word):
                spans.append((word, _LEADS["year"]))
            else:
                spans.append(_count(word, after))
        elif word in _NUMBER_WORDS:
            spans.append(_count(word, after))
        elif word in _WEEKDAYS:
            spans.append((word, _LEADS["day"]))
        elif _is_name_word(word) and word not in _NOT_NAMES:
            run = [word]
            while i + 1 < len(tokens):
                nxt = tokens[i + 1]
                if _is_name_word(nxt):
                    run.append(nxt)
                    i += 1
                elif nxt in _CONNECTORS and i + 2 < len(tokens) and _is_name_word(tokens[i + 2]):
                    run += [nxt, tokens[i + 2]]
                    i += 2
                else:
                    break
            if not (clause_start and len(run) == 1) and not set(run) <= topic_words | _CONNECTORS:
                spans.append((" ".join(run), _LEADS["name"]))
        i += 1
    seen: set[str] = set()
    return [(a, leads) for a, leads in spans if not (a in seen or seen.add(a))]


def seed_answer_span(question: str, answer: str) -> str:
    """The short answer a seed question asks for: the first answer span of its answer that the question does
    not mention ("In what year was Ashby founded?" / "Ashby was founded in 1742." -> "1742"), or ""."""
    asked = {w.lower() for w in _TOKEN.findall(question)}
    for span, _ in answer_spans(answer):
        if not {w.lower() for w in span.split()} <= asked:
            return span
    return ""


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


@functools.lru_cache(maxsize=16384)  # each fact is compared with every question of its leaf
def stems(text: str) -> frozenset[str]:
    """Content words cut to their first 4 letters: a crude stemmer ("founded"/"founder", "name"/"named")."""
    return frozenset(w[:4] for w in content_words(text))


def fits_other_fact(question: str, fact: str, facts: Sequence[str], topic: str = "") -> bool:
    """True when another fact shares more of the question's words (stems, topic words left out) than `fact`.

    A small teacher shown one sentence often asks about another: SmolLM2-135M wrote a question about the
    town's founding year for a sentence about how many kilns it had at its peak; trained on, that pair teaches
    the student to answer the founding question with the kilns. Ambiguous questions ("In what year did
    the Festival take place?" where two sentences are about the festival) go too.
    """
    words = stems(question) - stems(topic)
    own = len(words & stems(fact))
    return any(len(words & stems(other)) > own for other in facts if other != fact)


def seed_fact(question: str, answer: str, facts: Sequence[str], topic: str = "") -> str | None:
    """The fact that holds every name and number of a seed answer and shares the most words with the pair, or
    None when no fact holds them all or two facts tie (then the pair's source is unclear)."""
    names = names_and_numbers(answer)[1 if answer[:1].isupper() else 0:]  # not the sentence's first word
    words = stems(f"{question} {answer}") - stems(topic)
    scored = sorted(((len(words & stems(f)), f) for f in facts if all(n in f for n in names)), reverse=True)
    if not scored or not names or (len(scored) > 1 and scored[0][0] == scored[1][0]):
        return None
    return scored[0][1]


def supported_in(text: str, source: str, share: float = 0.8) -> bool:
    """True when each sentence of `text` has at least `share` of its content words (stems) in one sentence of
    `source`: a stricter faithfulness check than `grounded_in`, for answers a teacher wrote from a document.

    Names alone do not show that an answer is true: SmolLM2-135M answered "By what means did the town grow?"
    with "The town grew by trade, and it was founded by a farmer named Hester Vane." (every name is in the
    document; the founder, the farmer and the trade are not); "<the town> was built in 1788." (the year of
    another sentence). The sentences of the sample's teacher answers that were true scored 0.9-1.0.
    """
    facts = [stems(f) for f in split_facts(source, min_words=1)] or [stems(source)]
    sentences = [s for line in text.splitlines() for s in _sentences(line.strip()) if s.strip()]
    for sentence in sentences or [text]:  # not joined to the one before: "It ..." needs no antecedent here
        words = stems(sentence)
        if words and max(len(words & f) for f in facts) < share * len(words):
            return False
    return True


def question_fits(question: str, fact: str, source: str, min_shared: int = 1, answer: str = "",
                  facts: Sequence[str] = (), topic: str = "") -> str | None:
    """Why a generated question must be dropped ('not_a_question', 'gives_answer', 'off_topic', 'ungrounded',
    'other_fact'), or None. `facts` (all facts of the document) turns on the other-fact check."""
    question = question.strip()
    if len(question) < 10 or not question.endswith("?"):
        return "not_a_question"
    if answer and re.search(rf"\b{re.escape(answer.split()[0].lower())}\b", question.lower()):
        return "gives_answer"
    if len(content_words(question) & content_words(fact)) < min_shared:
        return "off_topic"
    if not grounded_in(question, source):
        return "ungrounded"
    if facts and fits_other_fact(question, fact, facts, topic):
        return "other_fact"
    return None
