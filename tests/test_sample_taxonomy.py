"""The bundled sample taxonomy and the demo's question files: valid, answerable, and not leaked into the seeds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from labrador.eval.keyfacts import fact_present
from labrador.eval.questions import load_question_set
from labrador.sdg.quality import Decontaminator
from labrador.taxonomy import lint_file, load_leaves
from labrador.taxonomy.documents import fetch_documents
from labrador.workspace import create_sample_taxonomy, sample_taxonomy_dir

DEMO = Path(__file__).resolve().parents[1] / "src" / "labrador" / "data" / "demo"


@pytest.fixture(scope="module")
def taxonomy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("taxonomy")
    create_sample_taxonomy(root)
    return root


@pytest.fixture(scope="module")
def leaves(taxonomy: Path) -> dict:
    return {leaf.kind: leaf for leaf in load_leaves(taxonomy, "empty")}


def test_sample_is_plain_tree_with_three_leaves(leaves: dict) -> None:
    assert not (sample_taxonomy_dir() / ".git").exists()
    assert sorted(leaves) == ["freeform_skill", "grounded_skill", "knowledge"]
    knowledge = leaves["knowledge"]
    assert len(knowledge.seed_examples) == 5
    assert all(len(seed.questions_and_answers) == 3 for seed in knowledge.seed_examples)
    assert all(seed.context for seed in leaves["grounded_skill"].seed_examples)


def test_every_leaf_lints_clean_without_warnings(taxonomy: Path) -> None:
    for qna in sorted(taxonomy.rglob("qna.yaml")):
        assert lint_file(qna, taxonomy) == [], qna


def test_text_files_follow_the_line_rules() -> None:
    for path in sorted(sample_taxonomy_dir().rglob("*")) + sorted(DEMO.glob("*.yaml")):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert text.endswith("\n") and not text.endswith("\n\n"), path
            for n, line in enumerate(text.splitlines(), 1):
                assert len(line) <= 120 and line == line.rstrip() and "\t" not in line, f"{path}:{n}"


def test_knowledge_document_is_found_and_one_to_two_pages(taxonomy: Path, leaves: dict) -> None:
    documents = fetch_documents(leaves["knowledge"], taxonomy)
    assert [Path(d.path).name for d in documents] == ["kelderwick.md"]
    words = len(documents[0].text.split())
    assert 400 <= words <= 1200
    document_words = set(re.findall(r"\d[\d,]*\d|\d|[\w-]+", documents[0].text))
    for seed in leaves["knowledge"].seed_examples:  # contexts are passages of the document: same names, numbers
        for seed_text in (seed.context, *(qa.answer for qa in seed.questions_and_answers)):
            facts = {w for w in re.findall(r"\d[\d,]*\d|\d|[\w-]+", seed_text) if w[0].isupper() or w[0].isdigit()}
            assert facts - {"A", "The", "In", "At", "After", "By", "Two", "She", "About"} <= document_words, seed_text


def test_heldout_questions_are_answerable_from_the_document(taxonomy: Path, leaves: dict) -> None:
    heldout = load_question_set(DEMO / "heldout.yaml")
    assert 10 <= len(heldout.questions) <= 12
    assert heldout.leaf and (taxonomy / heldout.leaf / "qna.yaml").is_file()
    text = fetch_documents(leaves["knowledge"], taxonomy)[0].text
    for q in heldout.questions:
        assert all(fact_present(text, fact) for fact in q.key_facts), q.question
        assert q.answer and all(fact_present(q.answer, fact) for fact in q.key_facts), q.question


def test_heldout_questions_do_not_overlap_the_seeds(leaves: dict) -> None:
    heldout = [q.question for q in load_question_set(DEMO / "heldout.yaml").questions]
    seed_texts = []
    for leaf in leaves.values():
        for seed in leaf.seed_examples:
            seed_texts += [t for t in (seed.question, seed.answer, seed.context) if t]
            seed_texts += [t for qa in seed.questions_and_answers for t in (qa.question, qa.answer)]
    report = Decontaminator(heldout).check(seed_texts)
    assert report.checked_texts == len(seed_texts) > 30
    assert report.clean, report.overlaps


def test_general_check_is_well_formed_and_distinct() -> None:
    general = load_question_set(DEMO / "general_check.yaml")
    heldout = load_question_set(DEMO / "heldout.yaml")
    assert 18 <= len(general.questions) <= 26
    assert not {q.question for q in general.questions} & {q.question for q in heldout.questions}
    assert Decontaminator([q.question for q in heldout.questions]).check(
        q.question for q in general.questions).clean
