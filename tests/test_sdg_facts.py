"""Knowledge facts: sentence splitting, grounding checks, the two fact blocks, the writer's closed-book rows
(their decontamination: tests/test_prepare.py). The real teacher writes fact questions in tests/test_sdg_e2e.py."""

from __future__ import annotations

import asyncio
from pathlib import Path

from labrador.prepare.mix import mix_phases
from labrador.prepare.options import PrepareOptions
from labrador.sdg.blocks import LLMBlock
from labrador.sdg.context import GenerateOptions, LeafContext
from labrador.sdg.english import (
    answer_spans,
    fits_other_fact,
    grounded_in,
    question_fits,
    seed_answer_span,
    seed_fact,
    split_facts,
    supported_in,
)
from labrador.sdg.fact_blocks import (
    FilterQuestionsBlock,
    SeedFactQuestionsBlock,
    SplitAnswersBlock,
    SplitFactsBlock,
)
from labrador.sdg.output import LeafResult, RunWriter
from labrador.sdg.quality import Decontaminator, guard_rows
from labrador.sdg.table import Table

DOC = """# Brackenford

Brackenford is a village on the River Lune. It was founded in 1650 by a miller.

## Trade

The village had 3 mills in 1800. Wool was sold every Monday.

| Firm | Founded | Workers |
|---|---|---|
| Lune Mill | 1802 | 30 |
| Fell Dairy | 1920 | |
"""


def test_split_facts_sentences_tables_pronouns_and_fragments() -> None:
    facts = split_facts(DOC)
    assert facts == [
        "Brackenford is a village on the River Lune. It was founded in 1650 by a miller.",  # "It" keeps its name
        "The village had 3 mills in 1800.",
        "Wool was sold every Monday.",
        "Lune Mill: Founded 1802; Workers 30.",
        "Fell Dairy: Founded 1920.",
    ]
    assert not any(f.startswith("#") for f in facts)
    # the tail of a sentence cut by a chunk's overlap is no fact; nor is a sentence under min_words words
    assert split_facts("at the Harrow Pits in 1788. The bridge is 212 metres long. Yes it is.") == [
        "The bridge is 212 metres long."]


def test_grounded_in_and_question_fits() -> None:
    source = "Kelderwick was founded in 1742 by Aldous Penhallow, a ferryman."
    assert grounded_in("It was founded by Aldous Penhallow in 1742.", source)
    assert not grounded_in("It was founded by Hester Vane in 1742.", source)  # an invented name
    assert not grounded_in("Penhallow founded it in 1790.", source)  # an invented year
    assert question_fits("Who founded Kelderwick?", source, source) is None
    assert question_fits("Who founded Kelderwick", source, source) == "not_a_question"
    assert question_fits("What is the largest island in the world?", source, source) == "off_topic"
    assert question_fits("Did Penhallow sail to Scotland?", source, source) == "ungrounded"


def test_answer_spans_names_years_counts_and_weekdays() -> None:
    topic = "The history of Kelderwick, a river town on the River Dunmere."
    spans = answer_spans("In 1861 the timber ferry was replaced by the Copperbell Bridge, a stone bridge of seven "
                         "arches, 212 metres long, across the Dunmere.", topic)
    assert spans == [("1861", ("In what year", "When")), ("Copperbell Bridge", ("What is the name of", "Which")),
                     ("seven arches", ("How many arches", "How")), ("212 metres", ("How many metres", "How"))]
    # names joined by "and" stay one name; a sentence's first word alone is its subject; topic names are no answer
    assert [a for a, _ in answer_spans("Kelderwick has a market every Thursday, run by Vane and Daughters.",
                                       topic)] == ["Thursday", "Vane and Daughters"]
    # a table row: the header words after ':' and ';' start clauses; a bare count has a plain lead
    assert answer_spans("Dunmere Boatyard: Founded 1888; Workers 41.", topic) == [
        ("Dunmere Boatyard", ("What is the name of", "Which")), ("1888", ("In what year", "When")),
        ("41", ("How many", "How"))]
    assert answer_spans("Pottery is still the best-known trade.", topic) == []
    # months are part of dates, not names; a count of a singular noun keeps only the number
    assert [a for a, _ in answer_spans("The Great Flood of March 1903 destroyed 3,000 paper boats.", topic)] == [
        "Great Flood", "1903", "3,000"]


def test_seed_answer_span_is_what_the_question_asks_for() -> None:
    assert seed_answer_span("In what year was Kelderwick founded?", "Kelderwick was founded in 1742.") == "1742"
    assert seed_answer_span("Who is the mayor of Kelderwick?",
                            "The mayor of Kelderwick is Mirela Oduya.") == "Mirela Oduya"
    assert seed_answer_span("What is the blue glaze called?", "It is a deep blue glaze.") == ""


def test_split_answers_block_rows_leads_and_examples() -> None:
    seeds = [{"question": "In what year was Lunby founded?", "answer": "Lunby was founded in 1650."},
             {"question": "Is Lunby old?", "answer": "Lunby is old."}]  # no answer span: not shown
    table = Table([{"fact": "The bridge was built in 1802 by Ada Fell.", "document_outline": "Lunby",
                    "_icl_seeds": seeds},
                   {"fact": "Pottery is still the best-known trade.", "document_outline": "Lunby",
                    "_icl_seeds": seeds}])
    ctx = LeafContext("knowledge/x", "facts", None, GenerateOptions())  # type: ignore[arg-type]
    out = asyncio.run(SplitAnswersBlock("answers", {}).run(table, ctx))
    assert [(r["answer_span"], r["question_lead"]) for r in out] == [
        ("1802", "In what year"), ("1802", "When"), ("Ada Fell", "What is the name of"), ("Ada Fell", "Which"),
        ("", "What"), ("", "Which")]
    assert out.rows[0]["answer_line"] == "Answer: 1802\n" and out.rows[-1]["answer_line"] == ""
    assert [s["answer_span"] for s in out.rows[0]["_icl_seeds"]] == ["1650"]
    # the teacher continues the lead; the block puts it back before the question is parsed
    block = LLMBlock("gen", {"prompt": "fact_question", "output_cols": ["question"], "parser": "text"})
    prompt = block.messages(out.rows[0], ctx, 0, 0)
    assert isinstance(prompt, str) and prompt.endswith("Fact: The bridge was built in 1802 by Ada Fell.\n"
                                                       "Answer: 1802\nQuestion: In what year")
    assert "Answer: 1650\nQuestion: In what year was Lunby founded?" in prompt
    assert block.parse(" was the bridge built?", out.rows[0]) == [{"question": "In what year was the bridge built?"}]
    # a question that states its own answer is dropped
    assert question_fits("In what year was the 1802 bridge built?", out.rows[0]["fact"], "x", 1, "1802") == \
        "gives_answer"


def test_split_facts_block_dedups_overlap_and_rotates_all_seed_pairs(tmp_path: Path) -> None:
    seeds_a = [{"question": "Qa?", "answer": "Aa."}]
    seeds_b = [{"question": "Qb?", "answer": "Ab."}]
    table = Table([{"document": "One fact is stated here. Two facts are stated here.", "_icl_seeds": seeds_a},
                   {"document": "Two facts are stated here. Three facts are stated here.", "_icl_seeds": seeds_b}])
    ctx = LeafContext("knowledge/x", "facts", None, GenerateOptions())  # type: ignore[arg-type]
    out = asyncio.run(SplitFactsBlock("split", {}).run(table, ctx))
    assert [r["fact"] for r in out] == ["One fact is stated here.", "Two facts are stated here.",
                                        "Three facts are stated here."]
    assert all(r["_closed_book"] for r in out)
    assert [r["_icl_seeds"][0]["question"] for r in out] == ["Qa?", "Qb?", "Qa?"]  # the leaf's pool, rotated
    kept = asyncio.run(FilterQuestionsBlock("filter", {}).run(Table([
        {"question": "How many facts are stated?", "fact": "Two facts are stated here.", "raw_document": "x"},
        {"question": "Who is the king of Spain?", "fact": "Two facts are stated here.", "raw_document": "x"},
    ]), ctx))
    assert [r["question"] for r in kept] == ["How many facts are stated?"]
    assert ctx.stats[-1].filtered == 1


def fact_row(question: str, fact: str) -> dict:
    return {"question": question, "response": fact, "fact": fact, "document": DOC, "raw_document": DOC,
            "_closed_book": True, "source_document": "b.md", "chunk_index": 0,
            "_meta": {"block": "gen_fact_questions", "prompt_hash": "0123456789ab", "sample_index": 0,
                      "lineage": ["gen_fact_questions:0123456789ab:0"]}}


def test_writer_asks_fact_rows_closed_book_in_both_phases(tmp_path: Path) -> None:
    qa = {**fact_row("When was it founded?", "In 1650."), "_closed_book": False}
    rows = [fact_row("Who founded Brackenford?", "It was founded in 1650 by a miller."), qa]
    stamp = "2026-01-01T00_00_00"
    RunWriter(tmp_path, stamp, {"pipeline": "simple", "teacher": "t"}).write(
        [LeafResult("knowledge/b/qna.yaml", "knowledge", rows=rows)])
    phases = mix_phases(tmp_path, [{"leaf": "knowledge/b/qna.yaml", "kind": "knowledge"}], PrepareOptions(seed=1))
    p07 = phases["knowledge"]
    fact = next(r for r in p07 if r["metadata"].get("closed_book"))
    assert fact["messages"][1]["content"] == "Who founded Brackenford?" and fact["unmask"] is False
    other = next(r for r in p07 if not r["metadata"].get("closed_book"))
    assert other["messages"][1]["content"].startswith("# Brackenford") and other["unmask"] is True
    p10 = phases["skills"]
    assert any(r["messages"][1]["content"] == "Who founded Brackenford?" for r in p10)
    assert not any("Document:" in r["messages"][1]["content"] and "Who founded" in r["messages"][1]["content"]
                   for r in p10)  # fact rows get no RAFT documents


KELDER = ("Kelderwick was founded in 1742 by Aldous Penhallow, a ferryman. At its peak, in 1860, the town had eleven "
          "kilns. The town is twinned with Saint-Aubry-sur-Loue, a village in France, since 1972. "
          "The bridge takes its name from a copper bell. The Copperbell Bridge is 212 metres long.")
TOPIC = "The history of Kelderwick, a river town."


def test_fits_other_fact_drops_misassigned_and_ambiguous_questions() -> None:
    facts = split_facts(KELDER)
    kilns, founded = facts[1], facts[0]
    # SmolLM2 wrote this founding question for the kilns sentence; trained on, it teaches the wrong sentence
    assert fits_other_fact("In what year was the town of Kelderwick founded?", kilns, facts, TOPIC)
    assert not fits_other_fact("In what year was the town of Kelderwick founded?", founded, facts, TOPIC)
    assert not fits_other_fact("How many kilns did the town have in 1860?", kilns, facts, TOPIC)
    # stems: "named" matches "name"; a question that another sentence answers as well as its own is kept
    assert not fits_other_fact("What is the bridge named after?", facts[3], facts, TOPIC)
    assert question_fits("In what year was the town of Kelderwick founded?", kilns, KELDER, 1, "1860",
                         facts, TOPIC) == "other_fact"
    assert question_fits("In what year was the town of Kelderwick founded?", kilns, KELDER, 1, "1860") is None


def test_seed_fact_finds_the_sentence_a_seed_answer_comes_from() -> None:
    facts = split_facts(KELDER)
    assert seed_fact("In what year was Kelderwick founded?", "Kelderwick was founded in 1742.", facts,
                     TOPIC) == facts[0]
    assert seed_fact("Which place is Kelderwick twinned with?",
                     "Kelderwick is twinned with Saint-Aubry-sur-Loue in France.", facts, TOPIC) == facts[2]
    assert seed_fact("How long is it?", "It is 99 metres long.", facts, TOPIC) is None  # in no sentence
    assert seed_fact("Is it old?", "It is old.", facts, TOPIC) is None  # no name or number to place it


def test_seed_fact_questions_block_adds_seed_rows_that_skip_seed_decontamination() -> None:
    seeds = [{"question": "In what year was Kelderwick founded?", "answer": "Kelderwick was founded in 1742."},
             {"question": "How long is the Copperbell Bridge?", "answer": "It is 212 metres long."},
             {"question": "Is the town old?", "answer": "It is old."}]
    table = Table([{"document": KELDER, "raw_document": KELDER, "document_outline": TOPIC, "_icl_seeds": seeds[:1],
                    "_seed_pairs": seeds}])
    ctx = LeafContext("knowledge/x", "facts", None, GenerateOptions())  # type: ignore[arg-type]
    facts = asyncio.run(SplitFactsBlock("split", {}).run(table, ctx))
    assert facts.rows[0]["_seed_pairs"] == seeds and facts.rows[0]["_icl_seeds"] == seeds[:1]
    asked = Table([{**r, "question": "What did the teacher ask?"} for r in facts])
    out = asyncio.run(SeedFactQuestionsBlock("seeds", {}).run(asked, ctx))
    added = [r for r in out if r.get("_seed_question")]
    assert [(r["question"], r["fact"]) for r in added] == [
        ("In what year was Kelderwick founded?", split_facts(KELDER)[0]),
        ("How long is the Copperbell Bridge?", split_facts(KELDER)[-1])]
    assert len(out) == len(asked) + 2 and out.rows[0]["_seed_question"]  # first: teacher near-copies lose
    # the generation's test split holds the seeds: a seed row is not "contaminated" by itself, a copy is
    decon = Decontaminator([s["question"] for s in seeds], 5, 0.5)
    rows = [{**added[0], "response": added[0]["fact"]},
            {**added[0], "response": added[0]["fact"], "_seed_question": False, "question": added[0]["question"]}]
    kept, dropped = guard_rows(rows, decon, max_answer_tokens=512)
    assert kept == rows[:1] and dropped == {"duplicate": 1}
    kept, dropped = guard_rows(rows[1:], decon, max_answer_tokens=512)
    assert kept == [] and dropped == {"contaminated": 1}


def test_filter_questions_other_facts_compares_with_every_chunk_of_the_leaf() -> None:
    first, second = KELDER.split(" At its peak")[0], "At its peak" + KELDER.split(" At its peak")[1]
    rows = [{"question": "When was the town founded?", "fact": split_facts(second)[0],
             "raw_document": second, "document_outline": TOPIC},
            {"question": "How many kilns were there in 1860?", "fact": split_facts(second)[0],
             "raw_document": second, "document_outline": TOPIC},
            {"question": "Who was Aldous Penhallow?", "fact": split_facts(first)[0], "raw_document": first,
             "document_outline": TOPIC}]
    ctx = LeafContext("knowledge/x", "facts", None, GenerateOptions())  # type: ignore[arg-type]
    block = FilterQuestionsBlock("filter", {"other_facts": True})
    kept = asyncio.run(block.run(Table(rows), ctx))
    assert [r["question"] for r in kept] == [rows[1]["question"], rows[2]["question"]]
    plain = asyncio.run(FilterQuestionsBlock("filter", {}).run(Table(rows), ctx))
    assert len(plain) == 3
    seed = {**rows[0], "_seed_question": True}  # placed by its seed answer, which says more than the question
    assert len(asyncio.run(block.run(Table([seed]), ctx))) == 1


def test_supported_in_needs_one_document_sentence_behind_each_answer_sentence() -> None:
    assert supported_in("Kelderwick was founded in 1742 by Aldous Penhallow.", KELDER)
    assert supported_in("The Copperbell Bridge is 212 metres long. It takes its name from a copper bell.", KELDER)
    assert not supported_in("Kelderwick was built in 1860.", KELDER)  # year of another sentence
    assert not supported_in("The town grew by trade under a farmer named Aldous Penhallow.", KELDER)
    assert grounded_in("The town grew by trade under a farmer named Aldous Penhallow.", KELDER)  # names alone pass
