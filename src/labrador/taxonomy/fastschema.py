"""A fast yes/no check of a document against our JSON Schemas, so jsonschema runs only on invalid files.

jsonschema is the authority: it produces every error message. But it is pure Python and builds a validator
object per value it visits, which made it half the cost of validating a valid file. Valid files are the
common case, so this small interpreter of the keywords our schema files use answers "valid?" exactly, and
raises Unsupported (=> ask jsonschema) for any keyword or value it does not handle exactly. A hypothesis test
checks that its verdict always equals jsonschema's.
"""

from __future__ import annotations

import json
import re
from typing import Any

ANNOTATIONS = frozenset({"$schema", "$id", "title", "description", "examples", "deprecated", "default", "$comment"})
_PLAIN_TYPES = {"string": str, "object": dict, "array": list, "boolean": bool}


class Unsupported(Exception):
    """This schema or value is outside what the fast check handles exactly."""


def strip(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema without annotation keywords (walking only schema positions, never property names)."""
    out: dict[str, Any] = {}
    for keyword, value in schema.items():
        if keyword in ANNOTATIONS:
            continue
        if keyword == "properties":
            value = {name: strip(sub) for name, sub in value.items()}
        elif keyword in ("items", "not") and isinstance(value, dict):
            value = strip(value)
        elif keyword in ("oneOf", "anyOf"):
            value = [strip(sub) for sub in value]
        out[keyword] = value
    return out


def is_valid(schema: dict[str, Any], instance: Any) -> bool:
    """Exactly jsonschema's (Draft 2020-12) verdict for the keywords handled here; Unsupported otherwise."""
    for keyword, value in schema.items():
        if keyword in ANNOTATIONS:
            continue
        check = _KEYWORDS.get(keyword)
        if check is None:
            raise Unsupported(keyword)
        if not check(value, instance, schema):
            return False
    return True


def _type(value: Any, instance: Any, _: dict[str, Any]) -> bool:
    if not isinstance(value, str):
        raise Unsupported("type list")
    if value in _PLAIN_TYPES:
        return isinstance(instance, _PLAIN_TYPES[value])
    if value == "null":
        return instance is None
    if isinstance(instance, bool):
        return False
    if value == "integer":
        return isinstance(instance, int) or (isinstance(instance, float) and instance.is_integer())
    if value == "number":
        return isinstance(instance, int | float)
    raise Unsupported(f"type {value}")


def _required(value: list[str], instance: Any, _: dict[str, Any]) -> bool:
    return not isinstance(instance, dict) or all(key in instance for key in value)


def _properties(value: dict[str, Any], instance: Any, _: dict[str, Any]) -> bool:
    if not isinstance(instance, dict):
        return True
    return all(is_valid(sub, instance[key]) for key, sub in value.items() if key in instance)


def _additional(value: Any, instance: Any, schema: dict[str, Any]) -> bool:
    if value is not False or "patternProperties" in schema:
        raise Unsupported("additionalProperties other than false")
    if not isinstance(instance, dict):
        return True
    known = schema.get("properties", {})
    return all(key in known for key in instance)


def _items(value: Any, instance: Any, _: dict[str, Any]) -> bool:
    if not isinstance(value, dict):
        raise Unsupported("items")
    return not isinstance(instance, list) or all(is_valid(value, item) for item in instance)


def _min_items(value: int, instance: Any, _: dict[str, Any]) -> bool:
    return not isinstance(instance, list) or len(instance) >= value


def _text_only(value: Any) -> bool:
    if isinstance(value, str) or value is None:
        return True
    if isinstance(value, list):
        return all(_text_only(v) for v in value)
    if isinstance(value, dict):
        return all(_text_only(v) for v in value.values())
    return False


def _unique(value: bool, instance: Any, _: dict[str, Any]) -> bool:
    if not value or not isinstance(instance, list):
        return True
    if not _text_only(instance):  # numbers compare across types (1 == 1.0, but not True): leave to jsonschema
        raise Unsupported("uniqueItems over numbers")
    keys = [json.dumps(item, sort_keys=True) for item in instance]
    return len(set(keys)) == len(keys)


def _pattern(value: str, instance: Any, _: dict[str, Any]) -> bool:
    return not isinstance(instance, str) or re.search(value, instance) is not None


def _const(value: Any, instance: Any, _: dict[str, Any]) -> bool:
    if isinstance(value, list | dict) or isinstance(instance, list | dict):
        raise Unsupported("const over containers")
    if isinstance(value, bool) or isinstance(instance, bool):
        return type(value) is type(instance) and value == instance
    if isinstance(value, int | float) != isinstance(instance, int | float):
        return False
    return bool(value == instance)


def _one_of(value: list[dict[str, Any]], instance: Any, _: dict[str, Any]) -> bool:
    return sum(is_valid(sub, instance) for sub in value) == 1


def _any_of(value: list[dict[str, Any]], instance: Any, _: dict[str, Any]) -> bool:
    return any(is_valid(sub, instance) for sub in value)


def _not(value: dict[str, Any], instance: Any, _: dict[str, Any]) -> bool:
    return not is_valid(value, instance)


_KEYWORDS = {"type": _type, "required": _required, "properties": _properties, "additionalProperties": _additional,
             "items": _items, "minItems": _min_items, "uniqueItems": _unique, "pattern": _pattern, "const": _const,
             "oneOf": _one_of, "anyOf": _any_of, "not": _not}
