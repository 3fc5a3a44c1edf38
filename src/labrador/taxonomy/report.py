"""The `ilab taxonomy diff` report: changed files, their issues, optional document checks, as data.

The CLI prints it as text or JSON; keeping it here keeps the CLI thin and lets other commands reuse it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labrador.errors import TaxonomyError
from labrador.taxonomy.diff import DiffResult, changed_files
from labrador.taxonomy.lint import analyze_many, display_path, relative_to_root
from labrador.taxonomy.models import Issue, Leaf
from labrador.taxonomy.yamlrules import load_rules


@dataclass
class FileReport:
    rel_path: str
    issues: list[Issue]
    leaf: Leaf | None

    @property
    def valid(self) -> bool:
        return not any(i.severity == "error" for i in self.issues)


@dataclass
class DiffReport:
    taxonomy_path: Path
    base: str
    diff: DiffResult
    files: list[FileReport] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(i.severity == "error" for f in self.files for i in f.issues)

    @property
    def warnings(self) -> int:
        return sum(i.severity == "warning" for f in self.files for i in f.issues)

    def valid(self, strict: bool = False) -> bool:
        return self.errors == 0 and (not strict or self.warnings == 0)

    def to_dict(self, strict: bool = False) -> dict[str, Any]:
        return {
            "taxonomy_path": str(self.taxonomy_path),
            "base": self.base,
            "base_used": self.diff.base_used,
            "notice": self.diff.notice,
            "valid": self.valid(strict),
            "errors": self.errors,
            "warnings": self.warnings,
            "files": [{"path": f.rel_path, "valid": f.valid, "leaf": f.leaf.name if f.leaf else None,
                       "kind": f.leaf.kind if f.leaf else None, "issues": [i.to_dict() for i in f.issues]}
                      for f in self.files],
            "removed": self.diff.removed,
        }


def build_report(taxonomy_path: str | Path, base: str, yaml_rules: str | Path | None = None,
                 check_documents: bool = False) -> DiffReport:
    root = Path(taxonomy_path)
    rules = load_rules(yaml_rules)
    diff = changed_files(root, base)
    report = DiffReport(root, base, diff)
    for path, result in zip(diff.changed, analyze_many(diff.changed, root, rules), strict=True):
        issues = list(result.issues)
        if check_documents and result.leaf is not None and result.leaf.document is not None:
            issues.extend(_document_issues(result.leaf, root, path))
        leaf = result.leaf if not any(i.severity == "error" for i in issues) else None
        report.files.append(FileReport(relative_to_root(path, root) or str(path), issues, leaf))
    return report


def _document_issues(leaf: Leaf, root: Path, path: Path) -> list[Issue]:
    from labrador.errors import UserFileError
    from labrador.taxonomy.documents import DocumentError, fetch_documents_unprefixed
    from labrador.userfiles import TAXONOMY_FILE, read_text
    from labrador.yamlnodes import YamlProblem, parse_yaml

    try:
        fetch_documents_unprefixed(leaf, root)
    except TaxonomyError as err:  # DocumentError, or a git failure such as a timeout
        line, column = 1, 1
        yaml_path = err.yaml_path if isinstance(err, DocumentError) else ".document"
        if yaml_path:
            keys: tuple[str | int, ...] = tuple(int(k) if k.isdigit() else k
                                                for k in re.findall(r"[^.\[\]]+", yaml_path))
            try:
                line, column = parse_yaml(read_text(path, TAXONOMY_FILE, root)).mark(keys)
            except (UserFileError, YamlProblem):
                pass
        message = " ".join(str(err).split())
        return [Issue(display_path(Path(os.path.abspath(path))), line, column, "error", message, yaml_path)]
    return []
