"""Parse YAML text into plain Python values while remembering where each value sits in the file: the one YAML
parser of labrador (the taxonomy, and `labrador.files.read_yaml` for config, presets, pipelines, question sets).

``yaml.compose`` (libyaml's C composer when available) gives nodes with start marks; we convert them
ourselves so that we can (1) report duplicate keys, which PyYAML silently overwrites, (2) keep a map from a
value's path (``("seed_examples", 0, "context")``) to its line/column, and (3) stop alias and merge-key bombs,
self-referencing anchors and deep nesting, which would otherwise hang, exhaust memory or crash on hostile input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from labrador.errors import DataError, LabradorError
from labrador.userfiles import line_and_column

Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_NODES = 50_000  # a big taxonomy file has about a thousand values; far more means an alias bomb
MAX_REPEATS = 50_000  # values copied through aliases and merge keys: real files copy a few, a bomb millions
MAX_DEPTH = 500  # real files nest 4 levels deep; libyaml's C composer crashes somewhere above 20,000
TOO_DEEP = "The file is nested too deeply to read; flatten the lists and keys."
TOO_MANY = ("The file expands to too many values (YAML anchors and aliases repeated many times); write the "
            "values out in full instead of using aliases.")

PathKey = tuple[str | int, ...]
STR_TAG = "tag:yaml.org,2002:str"
MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlProblem(Exception):
    """Malformed YAML; ``line``/``column`` are 1-based; ``detail`` is PyYAML's own words for a syntax error."""

    def __init__(self, message: str, line: int = 1, column: int = 1, detail: str | None = None) -> None:
        super().__init__(message)
        self.message, self.line, self.column, self.detail = message, line, column, detail


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
    def __init__(self, parsed: Parsed, kind: str, max_nodes: int | None) -> None:
        self.parsed, self.kind, self.max_nodes = parsed, kind, max_nodes
        self.constructor = SafeConstructor()
        self.count = 0
        self.repeats = 0  # values reached a second time, through an alias or a merge key
        self.seen: set[int] = set()
        self.active: set[int] = set()

    def convert(self, node: Node, path: PathKey) -> Any:
        self.count += 1
        if self.max_nodes is not None and self.count > self.max_nodes:
            raise YamlProblem(TOO_MANY, *_pos(node))
        if id(node) in self.active:
            raise YamlProblem("A YAML alias refers to the value that contains it, which makes an endless "
                              "value; write the value out in full instead of using the alias.", *_pos(node))
        if id(node) in self.seen:
            self._repeated(1, node)
        self.seen.add(id(node))
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

    def _repeated(self, count: int, node: Node) -> None:
        self.repeats += count
        if self.repeats > MAX_REPEATS:
            raise YamlProblem(TOO_MANY, *_pos(node))

    def _scalar(self, node: ScalarNode) -> Any:
        if node.tag == STR_TAG:  # most values: skip the constructor's dispatch
            return node.value
        try:
            return self.constructor.construct_object(node, deep=True)
        except ConstructorError:
            raise YamlProblem(f"The value uses a YAML tag ({node.tag}) that {self.kind}s do not allow; "
                              "remove the tag and write plain text.", *_pos(node)) from None
        except (ValueError, TypeError, OverflowError):
            raise YamlProblem(f"The value {node.value[:40]!r} cannot be read as the type its tag ({node.tag}) "
                              "says; write it as plain text.", *_pos(node)) from None

    def _mapping(self, node: MappingNode, path: PathKey) -> dict[str, Any]:
        merged, own = self._entries(node)
        chosen: dict[str, Node] = {}  # merged keys first, then the mapping's own, which win over merged ones
        for key_node, value_node in merged:
            if isinstance(key_node, ScalarNode):
                chosen.setdefault(key_node.value, value_node)
        first_seen: dict[str, int] = {}
        for key_node, value_node in own:
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
            chosen[key] = value_node
        return {key: self.convert(value_node, (*path, key)) for key, value_node in chosen.items()}

    def _entries(self, node: MappingNode) -> tuple[list[tuple[Node, Node]], list[tuple[Node, Node]]]:
        """(merged, own) key/value nodes. Merge keys (`<<: *base`, `<<: [*a, *b]`) as the YAML merge spec and
        PyYAML 6.0.4 resolve them: a mapping's own keys win over merged ones, an earlier merged mapping over a
        later one, and merged keys come first in the result."""
        merged: list[tuple[Node, Node]] = []
        own: list[tuple[Node, Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag != MERGE_TAG:
                own.append((key_node, value_node))
                continue
            if not isinstance(value_node, MappingNode | SequenceNode):
                raise self._bad_merge(f"expected a mapping or list of mappings for merging, but found "
                                      f"{value_node.id}", node)
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for source in sources:
                if not isinstance(source, MappingNode):
                    raise self._bad_merge(f"expected a mapping for merging, but found {source.id}", node)
                merged.extend(self._flattened(source))
        return merged, own

    def _flattened(self, node: MappingNode) -> list[tuple[Node, Node]]:
        """The entries a merged mapping brings, its own merges included; each counts as a repeat, so merge keys
        nested into a bomb stop as aliases do."""
        if id(node) in self.active:
            raise YamlProblem("A YAML merge key ('<<') merges the mapping that contains it, which makes an "
                              "endless value; write the keys out in full.", *_pos(node))
        self.active.add(id(node))
        try:
            merged, own = self._entries(node)
        finally:
            self.active.discard(id(node))
        self._repeated(len(merged) + len(own), node)
        resolved: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in merged:
            if isinstance(key_node, ScalarNode):
                resolved.setdefault(key_node.value, (key_node, value_node))
        for key_node, value_node in own:
            if isinstance(key_node, ScalarNode):
                resolved[key_node.value] = (key_node, value_node)
        return list(resolved.values())

    def _bad_merge(self, problem: str, node: Node) -> YamlProblem:
        return YamlProblem(f"A YAML merge key ('<<') is used wrongly: {problem}; write the keys out in full.",
                           *_pos(node))


def _depth_bound(text: str) -> int:
    """An upper bound of the nesting depth: every level needs one of these characters (cheap C-level counts)."""
    return sum(text.count(c) for c in "-:?[{")


def _check_depth(text: str) -> None:
    """libyaml's C composer recurses once per nesting level and crashes the process (not an exception) on
    tens of thousands of levels; the event parser keeps its own stack, so measure the depth with it first.
    libyaml's parser is used whatever the loader (PyYAML's own takes seconds on deep flow nesting); a syntax
    error it meets is left to the loader, which reports it in its own words."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=Loader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise YamlProblem(TOO_DEEP, event.start_mark.line + 1, event.start_mark.column + 1)
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.MarkedYAMLError as err:
        if "maximum nesting depth" in (err.problem or ""):  # libyaml's own limit, met while scanning ahead
            raise _syntax_problem(err, "YAML file") from None
    except yaml.YAMLError:
        pass


def parse_yaml(text: str, *, kind: str = "YAML file", max_nodes: int | None = MAX_NODES,
               loader: Any = Loader) -> Parsed:
    """Parse one YAML document; raises YamlProblem (with position) when the text is not valid YAML.

    ``kind`` names the file in messages ("taxonomy file"); ``max_nodes`` caps the values in the file (None:
    no cap but the file's size), while values repeated through aliases are capped at MAX_REPEATS anyway.
    ``loader`` scans the text: libyaml's (fast) by default; PyYAML's own accepts a little less."""
    try:
        if _depth_bound(text) > MAX_DEPTH:
            _check_depth(text)
        root = yaml.compose(text, Loader=loader)
    except yaml.MarkedYAMLError as err:
        raise _syntax_problem(err, kind) from None
    except yaml.reader.ReaderError as err:
        line, col = line_and_column(text, err.position)
        code = err.character if isinstance(err.character, int) else ord(err.character or "\0")
        raise YamlProblem(f"The file contains a character YAML does not allow (code U+{code:04X}); delete "
                          "it or retype the text around it.", line, col) from None
    except yaml.YAMLError as err:
        flat = " ".join(str(err).split())
        raise YamlProblem(f"The file is not valid YAML: {flat}. Check the file for stray characters.") from None
    except RecursionError:
        raise YamlProblem(TOO_DEEP) from None
    parsed = Parsed(data=None)
    if root is None:
        return parsed
    try:
        parsed.data = _Converter(parsed, kind, max_nodes).convert(root, ())
    except RecursionError:
        raise YamlProblem(TOO_DEEP) from None
    return parsed


def _syntax_problem(err: yaml.MarkedYAMLError, kind: str) -> YamlProblem:
    mark = err.problem_mark or err.context_mark
    problem = err.problem or "invalid YAML"
    context = f" ({err.context})" if err.context else ""
    if err.context and err.context_mark and mark and err.context_mark.line != mark.line:
        context = f" ({err.context} that starts on line {err.context_mark.line + 1})"
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    if "maximum nesting depth" in problem:  # PyYAML >= 6.0.3 has its own limit, below MAX_DEPTH
        return YamlProblem(TOO_DEEP, line, col)
    if err.context == "expected a single document in the stream":
        return YamlProblem(f"The file holds a second YAML document (starting at this '---'); a {kind} is one "
                           "document, so remove the '---' line and merge or delete what follows.", line, col)
    return YamlProblem(f"The file is not valid YAML: {problem}{context}. Check the indentation, colons and "
                       "quotes on this line and the one before it.", line, col, detail=err.problem)


def load(text: str, source: object, error: type[LabradorError] = DataError, kind: str = "labrador YAML file") -> Any:
    """The plain value of one YAML document, refusing what PyYAML accepts in silence: a key written twice
    (both lines named) and a key that is a list or mapping. ``error`` is raised, naming ``source`` and the
    place; a syntax error keeps the words `read_yaml` always gave ("not valid YAML (line L, column C: ...)").
    The text is scanned by PyYAML's own scanner, as `yaml.safe_load` did, so the same files are accepted
    (libyaml's, which the taxonomy uses, accepts a few more, such as `{q: What?}`)."""
    try:
        parsed = parse_yaml(text, kind=kind, max_nodes=None, loader=yaml.SafeLoader)
    except YamlProblem as problem:
        if problem.detail is not None:
            raise error(f"{source}: not valid YAML (line {problem.line}, column {problem.column}: "
                        f"{problem.detail}).") from None
        raise error(f"{source}: line {problem.line}, column {problem.column}: {problem.message}") from None
    if parsed.duplicates:
        path, _, line, column, first = parsed.duplicates[0]
        more = len(parsed.duplicates) - 1
        others = f" ({more} more key{'s' if more != 1 else ''} written twice follow)" if more else ""
        dotted = ".".join(str(part) for part in path)
        raise error(f"{source}: line {line}, column {column}: the key '{dotted}' is written twice (first on line "
                    f"{first}){others}; YAML would keep only one of them, so merge the two or remove one.")
    if parsed.bad_keys:
        line, column = parsed.bad_keys[0]
        raise error(f"{source}: line {line}, column {column}: this key is not plain text (it is a list or a group "
                    "of keys); write keys as single words followed by ':'.")
    return parsed.data
