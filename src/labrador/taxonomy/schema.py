"""JSON Schema validation (Draft 2020-12) of a parsed qna.yaml, with messages people can act on.

The schema files ship as package data under ``schemas/v<N>/``; validators are compiled once per process.
jsonschema is imported here, and this module is imported only when a file is validated.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

from labrador.yamlnodes import PathKey

SCHEMA_VERSIONS = (1, 2, 3)
CURRENT_VERSION = 3

# What to write for a missing key, in words (shown after "Add ...").
KEY_HINTS = {
    "version": "'version: 3' at the top of the file",
    "created_by": "'created_by: <your GitHub user name or your name>'",
    "domain": "'domain: <the subject, as short as a book chapter title, e.g. Astronomy>'",
    "document_outline": "'document_outline: <one sentence that summarises the documents>'",
    "task_description": "'task_description: <what the model should learn to do>'",
    "seed_examples": "'seed_examples:' followed by the examples, each starting with '- '",
    "document": "'document:' with 'patterns:' and either 'repo:' + 'commit:' or 'folder:'",
    "context": "'context: <a passage of text>' to this seed example",
    "questions_and_answers": "'questions_and_answers:' with at least 3 '- question: ... answer: ...' entries",
    "question": "'question: <the question>'",
    "answer": "'answer: <the answer>'",
    "patterns": "'patterns:' with at least one file pattern such as '- \"*.md\"'",
    "repo": "'repo: <URL of the git repository>'",
    "commit": "'commit: <the commit hash, see `git log`>'",
}
TYPE_WORDS = {"string": "text", "array": "a list (lines starting with '- ')", "object": "a group of 'key: value' lines",
              "integer": "a whole number", "number": "a number", "boolean": "true or false"}


@functools.cache
def schema_for(version: int, schema_name: str) -> dict[str, Any]:
    """The schema document (``schema_name`` is ``knowledge`` or ``compositional_skills``)."""
    path = resources.files("labrador.taxonomy") / "schemas" / f"v{version}" / f"{schema_name}.json"
    return json.loads(path.read_text(encoding="utf-8"))


@functools.cache
def _stripped(version: int, schema_name: str) -> dict[str, Any]:
    from labrador.taxonomy.fastschema import strip

    return strip(schema_for(version, schema_name))


@functools.cache
def _validator(version: int, schema_name: str) -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema_for(version, schema_name))


def warm_up() -> None:
    """Compile every validator now (before forking workers)."""
    for version in SCHEMA_VERSIONS:
        for name in ("knowledge", "compositional_skills"):
            _validator(version, name)


def yaml_path(path: PathKey) -> str:
    """``("seed_examples", 0, "context")`` -> ``.seed_examples[0].context`` (yq syntax, like InstructLab)."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out or "."


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return f"true/false ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"text ({value[:40]!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a group of keys"
    return f"a {type(value).__name__} value ({str(value)[:40]})"


def _name(path: PathKey) -> str:
    for part in reversed(path):
        if isinstance(part, str):
            return f"'{part}'"
    return "the file"


def _item_name(path: PathKey, index: int) -> str:
    words = {"seed_examples": "Seed example", "questions_and_answers": "Question-and-answer",
             "patterns": "Pattern"}
    word = words.get(str(path[-1]) if path else "", "Item")
    return f"{word} {index + 1}"


def validate(data: dict[str, Any], version: int, schema_name: str) -> list[tuple[PathKey, bool, str]]:
    """Every schema violation as (path, points_at_key, message), in file order of their paths."""
    from labrador.taxonomy import fastschema

    try:
        if fastschema.is_valid(_stripped(version, schema_name), data):
            return []  # exactly jsonschema's verdict (see fastschema), at a fraction of the cost
    except fastschema.Unsupported:
        pass
    problems: dict[tuple[PathKey, bool, str], None] = {}  # jsonschema repeats some (one `required` per key)
    for err in _validator(version, schema_name).iter_errors(data):
        problems.update(dict.fromkeys(_translate(err)))
    return list(problems)


def _translate(err: Any) -> list[tuple[PathKey, bool, str]]:
    path: PathKey = tuple(err.absolute_path)
    kind, value, inst = err.validator, err.validator_value, err.instance
    if kind == "required":
        missing = [k for k in value if isinstance(inst, dict) and k not in inst]
        where = "the top of the file" if not path else _name(path) if isinstance(path[-1], str) else \
            f"{_item_name(path[:-1], path[-1]).lower()} of {_name(path[:-1])}"
        return [(path, False, f"'{k}' is missing in {where}. Add {KEY_HINTS.get(k, repr(k))}.") for k in missing]
    if kind == "additionalProperties":
        known = err.schema.get("properties", {})
        return [((*path, k), True, _unknown_key(k, sorted(known))) for k in inst if k not in known]
    if kind == "minItems":
        have = len(inst) if isinstance(inst, list) else 0
        return [(path, False, f"{_name(path)} has {have} item{'s' if have != 1 else ''} but needs at least "
                 f"{value}; add {value - have} more.")]
    if kind == "uniqueItems":
        pairs = duplicate_indexes(inst) if isinstance(inst, list) else []
        if not pairs:
            return [(path, False, f"{_name(path)} has entries that are exact copies; change or remove them.")]
        return [((*path, later), False, f"{_item_name(path, later)} is an exact copy of "
                 f"{_item_name(path, first).lower()}; change it or remove it.") for first, later in pairs]
    if kind == "type":
        hint = ""
        if value == "string" and isinstance(inst, int | float | bool):
            hint = " Put the value in quotes, e.g. \"42\"."
        elif value == "string" and inst is None:
            hint = " Write the text after the colon, or remove the key."
        return [(path, False, f"{_name(path)} must be {TYPE_WORDS.get(value, value)}, but it is "
                 f"{_describe(inst)}.{hint}")]
    if kind == "pattern":  # the only pattern is "\S": not empty, not only spaces
        return [(path, False, f"{_name(path)} is empty or only spaces; write the text or remove the entry.")]
    if kind == "const" and path == ("version",):
        return [(path, False, f"'version' must be {value} for this format, but it is {_describe(inst)}.")]
    if kind == "oneOf" and path and path[-1] == "document":
        return [(path, False, "'document' needs either 'repo' and 'commit' (documents in a git repository) "
                 "or 'folder' (documents in a folder of the taxonomy), but not both; fix the keys under "
                 "'document'.")]
    return [(path, False, f"{_name(path)} is not valid: {err.message[:200]}.")]


def _unknown_key(key: str, allowed: list[str]) -> str:
    import difflib

    if key == "task_description" and "document_outline" in allowed:
        return ("'task_description' is not used by version 3 knowledge files; describe the documents in "
                "'document_outline' instead and remove 'task_description'.")
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.75)
    if close:
        return f"'{key}' is not a known key here; did you mean '{close[0]}'? Fix the spelling."
    return f"'{key}' is not a known key here; remove it or fix its spelling (allowed keys: {', '.join(allowed)})."


def duplicate_indexes(items: list[Any]) -> list[tuple[int, int]]:
    """(first, later) for each entry that is an exact copy of an earlier one (jsonschema's uniqueItems)."""
    seen: dict[str, int] = {}
    pairs = []
    for i, item in enumerate(items):
        key = json.dumps(item, sort_keys=True, default=str)
        if key in seen:
            pairs.append((seen[key], i))
        else:
            seen[key] = i
    return pairs
