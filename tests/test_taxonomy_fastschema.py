"""The fast validity check must give exactly jsonschema's verdict (it decides when jsonschema is skipped)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from labrador.taxonomy import fastschema
from labrador.taxonomy.schema import SCHEMA_VERSIONS, schema_for
from labrador.yamlnodes import parse_yaml

FIXTURES = Path(__file__).parent / "fixtures" / "taxonomy"
DOCS = [parse_yaml((FIXTURES / name).read_text()).data for name in sorted(p.name for p in FIXTURES.glob("*.yaml"))]
SCHEMAS = [(v, n) for v in SCHEMA_VERSIONS for n in ("knowledge", "compositional_skills")]
VALIDATORS = {key: Draft202012Validator(schema_for(*key)) for key in SCHEMAS}
STRIPPED = {key: fastschema.strip(schema_for(*key)) for key in SCHEMAS}

SCALARS = st.one_of(st.sampled_from(["", " ", "\t\n", "x", "3", "repo", "docs"]), st.text(max_size=5),
                    st.integers(-3, 5), st.sampled_from([3.0, 2.5, 1.0, float("nan")]), st.booleans(), st.none())
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.sampled_from(["question", "answer", "context", "repo", "commit", "folder", "patterns",
                                     "x"]), inner, max_size=3)), max_leaves=6)
NEAR_VALID = st.one_of(st.text(min_size=1, max_size=8), VALUES)  # half the time a (mostly) valid string
KEYS = ["version", "created_by", "domain", "task_description", "document_outline", "seed_examples", "document",
        "context", "question", "answer", "questions_and_answers", "repo", "commit", "folder", "patterns", "extra"]


def _containers(value: Any, out: list[Any]) -> list[Any]:
    if isinstance(value, dict | list):
        out.append(value)
        for child in (value.values() if isinstance(value, dict) else value):
            _containers(child, out)
    return out


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    doc = copy.deepcopy(draw(st.sampled_from(DOCS)))
    for _ in range(draw(st.integers(1, 2))):
        target = draw(st.sampled_from(_containers(doc, [])))
        action = draw(st.sampled_from(["set", "delete", "duplicate"]))
        if isinstance(target, dict):
            key = draw(st.sampled_from(sorted(target) + KEYS))
            if action == "delete":
                target.pop(key, None)
            else:
                target[key] = draw(NEAR_VALID) if action == "set" or key not in target else copy.deepcopy(target[key])
        elif target:
            index = draw(st.integers(0, len(target) - 1))
            if action == "delete":
                del target[index]
            elif action == "duplicate":
                target.append(copy.deepcopy(target[index]))
            else:
                target[index] = draw(NEAR_VALID)
    return doc


def _agree(doc: Any) -> None:
    for key in SCHEMAS:
        try:
            fast = fastschema.is_valid(STRIPPED[key], doc)
        except fastschema.Unsupported:
            continue
        assert fast == VALIDATORS[key].is_valid(doc), (key, doc)


@pytest.mark.parametrize("doc", DOCS)
def test_fixtures_agree(doc: Any) -> None:
    _agree(doc)


@settings(max_examples=200, deadline=None)
@given(mutated())
def test_fast_check_agrees_with_jsonschema_on_mutated_documents(doc: Any) -> None:
    _agree(doc)


def test_fast_check_refuses_what_it_does_not_handle() -> None:
    with pytest.raises(fastschema.Unsupported):
        fastschema.is_valid({"maxItems": 3}, [])
    with pytest.raises(fastschema.Unsupported):
        fastschema.is_valid({"uniqueItems": True}, [1, 1.0])
    assert fastschema.is_valid({"type": "integer"}, 3.0) is True  # as jsonschema: 3.0 is an integer
    assert fastschema.is_valid({"const": 3}, True) is False  # and true is not 3 (nor 1)
