"""Parse YAML text into plain Python values while remembering where each value sits in the file.

``yaml.compose`` (libyaml's C composer when available) gives nodes with start marks; we convert them
ourselves so that we can (1) report duplicate keys, which PyYAML silently overwrites, (2) keep a map from a
value's path (``("seed_examples", 0, "context")``) to its line/column, and (3) stop alias bombs and
self-referencing anchors, which would otherwise hang or recurse forever on hostile input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from labrador.taxonomy.yamlrules import line_and_column

Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_NODES = 50_000  # a big taxonomy file has about a thousand values; far more means an alias bomb
MAX_DEPTH = 500  # real files nest 4 levels deep; libyaml's C composer crashes somewhere above 20,000

PathKey = tuple[str | int, ...]
STR_TAG = "tag:yaml.org,2002:str"
MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlProblem(Exception):
    """Malformed YAML; ``line``/``column`` are 1-based."""

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.message, self.line, self.column = message, line, column


@dataclass
class Parsed:
    data: Any
    # path -> (line, column) of the value, and of the key for mapping entries
    value_marks: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    duplicates: list[tuple[PathKey, str, int, int, int]] = field(default_factory=list)  # path, key, line, col, first
    bad_keys: list[tuple[int, int]] = field(default_factory=list)

    def mark(self, path: PathKey, *, key: bool = False) -> tuple[int, int]:
        """The closest known position for ``path`` (walks up to the parent when a value is missing)."""
        if key and path in self.key_marks:
            return self.key_marks[path]
        while path:
            if path in self.value_marks:
                return self.value_marks[path]
            path = path[:-1]
        return self.value_marks.get((), (1, 1))


def _pos(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Converter:
    def __init__(self, parsed: Parsed) -> None:
        self.parsed = parsed
        self.constructor = SafeConstructor()
        self.count = 0
        self.active: set[int] = set()

    def convert(self, node: Node, path: PathKey) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise YamlProblem("The file expands to too many values (YAML anchors and aliases repeated many "
                              "times); write the values out in full instead of using aliases.", *_pos(node))
        if id(node) in self.active:
            raise YamlProblem("A YAML alias refers to the value that contains it, which makes an endless "
                              "value; write the value out in full instead of using the alias.", *_pos(node))
        self.parsed.value_marks.setdefault(path, _pos(node))
        if isinstance(node, ScalarNode):
            return self._scalar(node)
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return [self.convert(child, (*path, i)) for i, child in enumerate(node.value)]
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
        finally:
            self.active.discard(id(node))
        raise YamlProblem("This YAML value has an unknown form; write plain keys, lists and text.", *_pos(node))

    def _scalar(self, node: ScalarNode) -> Any:
        if node.tag == STR_TAG:  # most values: skip the constructor's dispatch
            return node.value
        try:
            return self.constructor.construct_object(node, deep=True)
        except ConstructorError:
            raise YamlProblem(f"The value uses a YAML tag ({node.tag}) that taxonomy files do not allow; "
                              "remove the tag and write plain text.", *_pos(node)) from None
        except (ValueError, TypeError, OverflowError):
            raise YamlProblem(f"The value {node.value[:40]!r} cannot be read as the type its tag ({node.tag}) "
                              "says; write it as plain text.", *_pos(node)) from None

    def _mapping(self, node: MappingNode, path: PathKey) -> dict[str, Any]:
        try:
            if any(key.tag == MERGE_TAG for key, _ in node.value):
                self.constructor.flatten_mapping(node)  # resolves `<<: *anchor` merge keys
        except ConstructorError as err:
            raise YamlProblem(f"A YAML merge key ('<<') is used wrongly: {err.problem}; write the keys out "
                              "in full.", *_pos(node)) from None
        result: dict[str, Any] = {}
        first_seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.parsed.bad_keys.append(_pos(key_node))
                continue
            key = key_node.value  # the text as written: `yes:` stays "yes", `3:` stays "3"
            line, col = _pos(key_node)
            if key in first_seen:
                self.parsed.duplicates.append(((*path, key), key, line, col, first_seen[key]))
                continue
            first_seen[key] = line
            self.parsed.key_marks[(*path, key)] = (line, col)
            result[key] = self.convert(value_node, (*path, key))
        return result


def _depth_bound(text: str) -> int:
    """An upper bound of the nesting depth: every level needs one of these characters (cheap C-level counts)."""
    return sum(text.count(c) for c in "-:?[{")


def _check_depth(text: str) -> None:
    """libyaml's C composer recurses once per nesting level and crashes the process (not an exception) on
    tens of thousands of levels; the event parser keeps its own stack, so measure the depth with it first."""
    depth = 0
    for event in yaml.parse(text, Loader=Loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise YamlProblem("The file is nested too deeply to read; flatten the lists and keys.",
                                  event.start_mark.line + 1, event.start_mark.column + 1)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def parse_yaml(text: str) -> Parsed:
    """Parse one YAML document; raises YamlProblem (with position) when the text is not valid YAML."""
    try:
        if _depth_bound(text) > MAX_DEPTH:
            _check_depth(text)
        root = yaml.compose(text, Loader=Loader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        problem = err.problem or "invalid YAML"
        context = f" ({err.context})" if err.context else ""
        if err.context and err.context_mark and mark and err.context_mark.line != mark.line:
            context = f" ({err.context} that starts on line {err.context_mark.line + 1})"
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        if "maximum nesting depth" in problem:  # PyYAML >= 6.0.3 has its own limit, below MAX_DEPTH
            raise YamlProblem("The file is nested too deeply to read; flatten the lists and keys.", line, col) \
                from None
        if err.context == "expected a single document in the stream":
            raise YamlProblem("The file holds a second YAML document (starting at this '---'); a taxonomy file is "
                              "one document, so remove the '---' line and merge or delete what follows.",
                              line, col) from None
        raise YamlProblem(f"The file is not valid YAML: {problem}{context}. Check the indentation, colons and "
                          "quotes on this line and the one before it.", line, col) from None
    except yaml.reader.ReaderError as err:
        line, col = line_and_column(text, err.position)
        code = err.character if isinstance(err.character, int) else ord(err.character or "\0")
        raise YamlProblem(f"The file contains a character YAML does not allow (code U+{code:04X}); delete "
                          "it or retype the text around it.", line, col) from None
    except yaml.YAMLError as err:
        flat = " ".join(str(err).split())
        raise YamlProblem(f"The file is not valid YAML: {flat}. Check the file for stray characters.") from None
    except RecursionError:
        raise YamlProblem("The file is nested too deeply to read; flatten the lists and keys.") from None
    parsed = Parsed(data=None)
    if root is None:
        return parsed
    try:
        parsed.data = _Converter(parsed).convert(root, ())
    except RecursionError:
        raise YamlProblem("The file is nested too deeply to read; flatten the lists and keys.") from None
    return parsed
