"""Lint one qna.yaml: placement in the tree, YAML text rules, schema, and the checks a schema cannot express.

``analyze`` returns every issue found (never stops at the first) and, when there is no error, the ``Leaf``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labrador.errors import UserFileError
from labrador.taxonomy import checks, schema
from labrador.taxonomy.models import Issue, Leaf
from labrador.taxonomy.schema import yaml_path
from labrador.taxonomy.yamlrules import check_text, estimate_tokens
from labrador.userfiles import TAXONOMY_FILE, inside, read_text
from labrador.yamlnodes import Parsed, PathKey, YamlProblem, parse_yaml

TREES = ("knowledge", "compositional_skills", "foundational_skills")
QNA_NAME = "qna.yaml"
TAXONOMY_KIND = "taxonomy file"  # how YAML problems name the file
PARALLEL_FROM = 100  # files per worker process worth the start of a process


@dataclass
class Analysis:
    issues: list[Issue]
    leaf: Leaf | None

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]


class _Report:
    """Collects issues for one file; positions come from the parsed YAML when there is one."""

    def __init__(self, display: str) -> None:
        self.display = display
        self.issues: list[Issue] = []
        self.parsed: Parsed | None = None

    def add(self, severity: str, message: str, line: int = 1, column: int = 1, yaml_path: str | None = None) -> None:
        self.issues.append(Issue(self.display, line, column, severity, message, yaml_path))  # type: ignore[arg-type]

    def at(self, severity: str, path: PathKey, message: str, *, key: bool = False) -> None:
        line, column = self.parsed.mark(path, key=key) if self.parsed else (1, 1)
        self.add(severity, message, line, column, yaml_path(path))


def display_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def relative_to_root(qna_path: Path, root: Path) -> str | None:
    """Posix path of qna_path inside root (lexically first, then with symlinks resolved), else None."""
    try:
        return Path(os.path.abspath(qna_path)).relative_to(os.path.abspath(root)).as_posix()
    except ValueError:
        pass
    try:
        return qna_path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None


def analyze(qna_path: Path, root: Path, rules: dict[str, dict[str, Any]]) -> Analysis:
    report = _Report(display_path(Path(os.path.abspath(qna_path))))
    rel = relative_to_root(qna_path, root)
    if rel is not None and _leaves_tree(report, qna_path, root):
        return Analysis(report.issues, None)
    tree = _check_placement(report, qna_path, root, rel)
    data = _read(report, qna_path, rules, root if rel is not None else None)
    leaf = None
    if isinstance(data, dict):
        leaf = _check_content(report, data, tree, rel or qna_path.as_posix(), qna_path, rules)
    report.issues.sort(key=lambda i: (i.line, i.column))
    has_error = any(i.severity == "error" for i in report.issues)
    return Analysis(report.issues, None if has_error else leaf)


def _leaves_tree(report: _Report, path: Path, root: Path) -> bool:
    """Report a file or folder that is a symbolic link out of the taxonomy (never followed); True when so."""
    try:
        inside(path, root)
    except UserFileError as err:
        subject = "This folder" if os.path.isdir(path) else "The file"
        report.add("error", f"{subject} {err.problem}")
        return True
    return False


def _workers(count: int) -> int:
    """Worker processes for ``count`` files: fork-based, so only where fork is safe (Linux/macOS, no threads)."""
    override = os.environ.get("LABRADOR_TAXONOMY_WORKERS")
    if override and override.isdigit():
        wanted = int(override)
    else:
        wanted = min(os.cpu_count() or 1, 8, count // PARALLEL_FROM)
    import multiprocessing
    import threading

    if (wanted <= 1 or "fork" not in multiprocessing.get_all_start_methods() or threading.active_count() > 1
            or any(name in sys.modules for name in ("torch", "llama_cpp"))):  # native thread pools: no fork
        return 1
    return wanted


def analyze_many(paths: list[Path], root: Path, rules: dict[str, dict[str, Any]]) -> list[Analysis]:
    """``analyze`` for many files, in order; large batches (``ilab taxonomy diff --taxonomy-base empty`` on a
    big taxonomy) are spread over processes, as jsonschema is pure Python and CPU-bound."""
    workers = _workers(len(paths))
    if workers <= 1:
        return [analyze(path, root, rules) for path in paths]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from itertools import repeat

    from labrador.taxonomy.schema import warm_up

    warm_up()  # import jsonschema and compile validators once, before fork, instead of once per worker
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        return list(pool.map(analyze, paths, repeat(root), repeat(rules),
                             chunksize=max(1, len(paths) // (workers * 4))))


def _check_placement(report: _Report, qna_path: Path, root: Path, rel: str | None) -> str | None:
    """The tree (first folder) the file sits in, reporting a wrong name or place."""
    if rel is None:
        report.add("error", f"This file is not inside the taxonomy folder {root}; move it there, or point "
                   "--taxonomy-path at the taxonomy that holds it.")
        return None
    parts = rel.split("/")
    if parts[-1] != QNA_NAME:
        report.add("error", f"The file is named '{parts[-1]}', but taxonomy files must be named exactly "
                   "'qna.yaml' (lower case, .yaml); rename it.")
    tree = parts[0] if parts[0] in TREES else None
    if tree is None:
        report.add("error", f"The file is not under {', '.join(t + '/' for t in TREES)} of the taxonomy; move "
                   "its folder under the one that fits (knowledge for facts from documents, compositional_skills "
                   "for skills).")
    elif len(parts) < 3:
        report.add("error", f"qna.yaml must sit in its own folder below {tree}/ (for example "
                   f"{tree}/<topic>/qna.yaml), not directly in {tree}/; create a folder and move it there.")
    else:
        nested = _nested_qna(qna_path.parent)
        if nested:
            inner = nested.relative_to(qna_path.parent).as_posix()
            report.add("error", f"This folder is not a leaf: another taxonomy file ({inner}) lies below it. "
                       "Each qna.yaml must be in a folder with no further qna.yaml below it; move one of them.")
    return tree


def _nested_qna(folder: Path) -> Path | None:
    for current, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if current != str(folder) and QNA_NAME in files:
            return Path(current) / QNA_NAME
    return None


def _read(report: _Report, qna_path: Path, rules: dict[str, dict[str, Any]], root: Path | None) -> Any:
    try:
        text = read_text(qna_path, TAXONOMY_FILE, root)
    except UserFileError as err:
        report.add("error", f"The file {err.problem}", err.line or 1, err.column or 1)
        return None
    for hit in check_text(text, rules):
        report.add(hit.level, hit.message, hit.line, hit.column)
    try:
        parsed = parse_yaml(text, kind=TAXONOMY_KIND)
    except YamlProblem as problem:
        report.add("error", problem.message, problem.line, problem.column)
        return None
    report.parsed = parsed
    for path, key, line, column, first in parsed.duplicates:
        report.add("error", f"The key '{key}' appears twice in the same block (first on line {first}); YAML "
                   "keeps only one of them, so remove or rename the other.", line, column,
                   yaml_path(path))
    for line, column in parsed.bad_keys:
        report.add("error", "This key is not plain text (it is a list or a group of keys); write keys as "
                   "single words such as 'question:'.", line, column)
    if parsed.data is None:
        report.add("error", "The file is empty; write the taxonomy fields (version, created_by, seed_examples "
                   "and the others) or delete the file.")
    elif not isinstance(parsed.data, dict):
        kind = "a list" if isinstance(parsed.data, list) else "a single value"
        report.add("error", f"The file must be a set of 'key: value' lines (version:, created_by:, "
                   f"seed_examples:, ...), but it holds {kind}; rewrite it in that form.")
    return parsed.data


def _check_content(report: _Report, data: dict[str, Any], tree: str | None, rel: str, qna_path: Path,
                   rules: dict[str, dict[str, Any]]) -> Leaf | None:
    version = data.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int):
        report.at("error", ("version",), f"'version' must be a whole number, 3 for new files, but it is "
                  f"{schema._describe(version)}; write 'version: 3'.")
        return None
    if version not in schema.SCHEMA_VERSIONS:
        report.at("error", ("version",), f"Version {version} is not a taxonomy format labrador knows; use "
                  f"version {schema.CURRENT_VERSION}, the current format.")
        return None
    schema_name = checks.schema_name(tree, data)
    if tree is not None and checks.wrong_tree(report, data, tree, version):
        return None
    if version < schema.CURRENT_VERSION:
        report.add("warning", checks.deprecation_message(version, schema_name))
    for path, key, message in schema.validate(data, version, schema_name):
        report.at("error", path, message, key=key)
    kind = checks.leaf_kind(report, data, tree, rel, schema_name)
    checks.duplicate_questions(report, data)
    checks.seed_sizes(report, data, rules["seed-tokens"], estimate_tokens)
    if any(i.severity == "error" for i in report.issues) or kind is None:
        return None
    return checks.build_leaf(data, qna_path, rel, kind, version)
