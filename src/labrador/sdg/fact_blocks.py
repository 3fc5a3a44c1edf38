"""Blocks of the knowledge-facts pipeline (`knowledge_facts.yaml`): facts of a document, the short answers
they hold, checks of the questions the teacher writes for them, and the seed questions answered by their facts.

The text rules are English ones (`labrador.sdg.english`): each block says so (`language = "english"`) and a
pipeline that names one must declare `language: english`, so a pipeline for another language cannot pick them
up unawares."""

from __future__ import annotations

from labrador.sdg.context import LeafContext
from labrador.sdg.english import answer_spans, question_fits, seed_answer_span, seed_fact, split_facts
from labrador.sdg.registry import Block, register_block
from labrador.sdg.table import Row, Table


class EnglishBlock(Block):
    """A block that applies the English rules of `labrador.sdg.english`."""

    language = "english"


@register_block("split_facts")
class SplitFactsBlock(EnglishBlock):
    """One row per fact sentence of the `column` text (see `labrador.sdg.english.split_facts`), into `output`.

    Facts repeated by overlapping chunks appear once. Each fact row is marked closed-book (`_closed_book`): its
    training record asks the question without the document, as users will. Every fact row gets the seed Q&A
    pairs of all the chunks as examples (rotated, so each row leads with a different one; a leaf with fewer
    chunks than seed examples shows the first ones only) and, in `_seed_pairs`, every seed pair of the leaf.
    """

    def apply(self, table: Table, ctx: LeafContext) -> Table:
        column, output = self.config.get("column", "document"), self.config.get("output", "fact")
        table.require(column, block=self.name)
        pool: list[dict[str, str]] = []
        every_pair: list[dict[str, str]] = []  # the leaf's seed pairs, for seed_fact_questions
        for row in table:
            pool += [s for s in row.get("_icl_seeds") or [] if s not in pool]
            every_pair += [s for s in row.get("_seed_pairs") or [] if s not in every_pair]
        seen: set[str] = set()
        out: list[Row] = []
        for row in table:
            for fact in split_facts(str(row[column]), int(self.config.get("min_words", 4))):
                if fact in seen:
                    continue
                seen.add(fact)
                shift = len(out) % len(pool) if pool else 0
                out.append({**row, output: fact, "_closed_book": True, "_icl_seeds": pool[shift:] + pool[:shift],
                            "_seed_pairs": every_pair or pool})
        return Table(out)


@register_block("split_answers")
class SplitAnswersBlock(EnglishBlock):
    """One row per (short answer, question lead) of each `fact` (see `labrador.sdg.english.answer_spans`).

    Adds `answer_span`, `question_lead` and `answer_line` ("Answer: 212 metres\n", or "" for a fact that holds
    no name or number: it gets the open leads "What" and "Which"). The leaf's seed Q&A pairs become the
    examples, each with the answer its question asks for (a name or number of the answer that the question does
    not say); seeds with none are not shown.
    """

    OPEN_LEADS = ("What", "Which")

    def apply(self, table: Table, ctx: LeafContext) -> Table:
        fact, topic = self.config.get("fact", "fact"), self.config.get("topic", "document_outline")
        table.require(fact, block=self.name)
        out: list[Row] = []
        for row in table:
            seeds = [{**s, "answer_span": span} for s in row.get("_icl_seeds") or []
                     if (span := seed_answer_span(str(s.get("question", "")), str(s.get("answer", ""))))]
            spans = answer_spans(str(row[fact]), str(row.get(topic) or ""))
            for answer, leads in spans or [("", self.OPEN_LEADS)]:
                line = f"Answer: {answer}\n" if answer else ""
                out += [{**row, "answer_span": answer, "question_lead": lead, "answer_line": line,
                         "_icl_seeds": seeds} for lead in leads]
        return Table(out)


@register_block("filter_questions")
class FilterQuestionsBlock(EnglishBlock):
    """Keep generated questions that are questions, share a content word with their `fact`, name nothing
    that the `source` text does not and do not contain their `answer` column, when the config names one (see
    `labrador.sdg.english.question_fits`). With `other_facts: true` a question that another fact of the leaf
    (a sentence of any row's `source`, or any row's `fact`) answers better is dropped too; `topic` names the
    column of words that every fact shares (the leaf's document outline) and that do not count. A seed's own
    question (`_seed_question`, placed by its answer) is kept as it is."""

    drops_rows = True

    def apply(self, table: Table, ctx: LeafContext) -> Table:
        question, fact = self.config.get("question", "question"), self.config.get("fact", "fact")
        source = self.config.get("source", "raw_document")
        table.require(question, fact, source, block=self.name)
        shared = int(self.config.get("min_shared_words", 1))
        answer, topic = self.config.get("answer"), self.config.get("topic", "document_outline")
        facts: list[str] = []  # every fact of the leaf's documents: all chunks of them are in this table
        if self.config.get("other_facts"):
            sources = dict.fromkeys(str(r[source]) for r in table)
            facts = list(dict.fromkeys([f for text in sources for f in split_facts(text)] +
                                       [str(r[fact]) for r in table]))
        return Table(r for r in table if r.get("_seed_question") or question_fits(
            str(r[question]), str(r[fact]), str(r[source]), shared, str(r.get(answer) or "") if answer else "",
            facts, str(r.get(topic) or "")) is None)


@register_block("seed_fact_questions")
class SeedFactQuestionsBlock(EnglishBlock):
    """Add one row per seed Q&A pair of the leaf whose answer comes from one `fact`: the seed question, with
    that fact as the row's `fact` (see `labrador.sdg.english.seed_fact`).

    The contributor's questions are the best-formed questions there are, and their answers are often shorter
    than the sentence they come from ("The town was founded in 1742." where the sentence also names the
    founder); answered with the whole sentence as well, they teach which sentence each kind of question asks
    for. Needs the `_seed_pairs` that `split_facts` leaves on its rows. The rows are marked `_seed_question`:
    the generation's test-split decontamination (which holds the seeds) does not apply to them.
    """

    def apply(self, table: Table, ctx: LeafContext) -> Table:
        question, fact = self.config.get("question", "question"), self.config.get("fact", "fact")
        topic = self.config.get("topic", "document_outline")
        table.require(fact, block=self.name)
        by_fact: dict[str, Row] = {}
        pairs: list[dict[str, str]] = []
        for row in table:
            by_fact.setdefault(str(row[fact]), row)
            pairs += [p for p in row.get("_seed_pairs") or [] if p not in pairs]
        out: list[Row] = []  # first, so that the teacher's near-copies of a seed question are the ones dropped
        outline = str(next(iter(by_fact.values()), {}).get(topic) or "")
        for pair in pairs:
            source = seed_fact(str(pair.get("question", "")), str(pair.get("answer", "")), list(by_fact), outline)
            if source is None:
                continue
            row = by_fact[source]
            out.append({**row, question: str(pair["question"]), "answer_span": "", "question_lead": "",
                        "_seed_question": True, "_meta": {**row.get("_meta", {}), "block": self.name}})
        return Table(out + list(table))
