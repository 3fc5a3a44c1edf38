"""Fuzzing the config reader and the question-set reader (hypothesis), as test_taxonomy_reader fuzzes the taxonomy.

Whatever a user's config.yaml or question file holds (random bytes, YAML-like text built from YAML's tricky
tokens, or well-formed YAML with random values under the real keys), the reader returns a value or raises a
`LabradorError` subclass, never anything else, and every call ends within the hypothesis deadline (alias
bombs and deep nesting are rejected, not expanded).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from labrador.config import Config, load_config, parse_config_text
from labrador.errors import LabradorError
from labrador.eval.questions import QuestionSet, load_question_set

# A call takes milliseconds; the deadline only has to catch a reader that expands or loops (the CPU may be
# shared with other runs, so it is generous). Few examples per test keep the whole file well under 20 s.
FUZZ = settings(max_examples=120, deadline=timedelta(seconds=2),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

ALIAS_BOMB = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))
DEEP = "[" * 50_000 + "]" * 50_000 + "\n"
TRICKY = [ALIAS_BOMB, DEEP, "general:\n  log_level: INFO\ngeneral:\n  debug: true\n", "\xff\xfe",
          "serve: {port: 99999999999999999999999999}\n", "chat: !!python/object/apply:os.system [true]\n"]

YAML_ATOMS = st.sampled_from([
    "general:\n", "chat:\n", "generate:\n", "serve:\n", "train:\n", "evaluate:\n", "models:\n", "  log_level: ",
    "  port: ", "  max_tokens: ", "  endpoint_urls: ", "  backend_args: ", "  learning_rate: ", "questions:\n",
    "  - question: q\n", "    key_facts: ", "    answer: ", "leaf: ", "version: 1\n", "- ", ": ", "&a ", "*a ",
    "<<: *a\n", "!!binary ", "!!python/object:os.system ", "!tag ", "[", "]", "{", "}", "\"", "'", "|\n",
    ">-\n", "  ", "\t", "\n", "---\n", "...\n", "? ", "#", "%YAML 1.1\n", "%TAG ! tag:x,2000:\n", "\ufeff",
    "~", "null", "true", "1e999", "-0", "0x1F", ".nan", "2024-01-01", "\x00", "\u2028", "é", "\ud800", "\\x",
])
YAML_LIKE = st.lists(YAML_ATOMS | st.text(max_size=4), max_size=40).map("".join)
RAW_BYTES = st.one_of(st.binary(max_size=400), YAML_LIKE.map(lambda t: t.encode("utf-8", "surrogatepass")))

SCALARS = (st.none() | st.booleans() | st.integers(-(1 << 70), 1 << 70) | st.floats() | st.text(max_size=8)
           | st.sampled_from(["INFO", "auto", "simple", "", " ", "0", "1.5", "127.0.0.1"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=12)


def _section_keys() -> dict[str, list[str]]:
    return {name: list(field.annotation.model_fields) for name, field in Config.model_fields.items()}


SECTIONS = _section_keys()
CONFIG_MAPPINGS = st.dictionaries(
    st.sampled_from([*SECTIONS, "unknown"]),
    st.dictionaries(st.sampled_from(sorted({k for keys in SECTIONS.values() for k in keys} | {"nope"})), VALUES,
                    max_size=5) | VALUES, max_size=4)
QUESTION = st.fixed_dictionaries({}, optional={"question": VALUES | st.text(max_size=10), "key_facts": VALUES,
                                               "answer": VALUES})
QUESTION_MAPPINGS = st.fixed_dictionaries({"questions": st.lists(QUESTION | VALUES, max_size=4) | VALUES},
                                          optional={"version": VALUES, "leaf": VALUES})


def _dump(value: Any) -> str:
    return yaml.safe_dump(value, allow_unicode=True, sort_keys=False)


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)


def _only_labrador_errors(call: Callable[[], Any], expected: type) -> None:
    """`call()` gives an `expected` value or raises a LabradorError; anything else fails the test."""
    started = time.monotonic()
    try:
        assert isinstance(call(), expected)
    except LabradorError as err:
        assert str(err).strip()  # a message the user can read, not an empty one
    assert time.monotonic() - started < 2.0


def _from_file(scratch: Path, content: bytes, reader: Callable[[Path], Any], expected: type) -> None:
    path = scratch / "input.yaml"
    path.write_bytes(content)
    _only_labrador_errors(lambda: reader(path), expected)


@FUZZ
@given(RAW_BYTES)
@example(ALIAS_BOMB.encode()).via("an alias bomb")
@example(DEEP.encode()).via("deep nesting")
@example(b"general:\n  debug: \xff\n").via("not UTF-8")
def test_load_config_on_random_bytes(scratch: Path, content: bytes) -> None:
    _from_file(scratch, content, load_config, Config)


@FUZZ
@given(YAML_LIKE | st.sampled_from(TRICKY) | CONFIG_MAPPINGS.map(_dump))
def test_parse_config_text_on_yaml_like_text(text: str) -> None:
    _only_labrador_errors(lambda: parse_config_text(text, "fuzz.yaml"), Config)


@FUZZ
@given(CONFIG_MAPPINGS)
def test_load_config_on_random_values_under_real_keys(scratch: Path, mapping: dict[str, Any]) -> None:
    _from_file(scratch, _dump(mapping).encode(), load_config, Config)


@FUZZ
@given(RAW_BYTES | QUESTION_MAPPINGS.map(lambda m: _dump(m).encode()))
@example(ALIAS_BOMB.encode()).via("an alias bomb")
@example(DEEP.encode()).via("deep nesting")
@example(b"questions:\n  - question: \xc3\x28\n").via("not UTF-8")
def test_load_question_set_on_random_input(scratch: Path, content: bytes) -> None:
    _from_file(scratch, content, load_question_set, QuestionSet)
