"""The taxonomy: qna.yaml files in a git repository, read into ``Leaf`` objects after validation.

Public API: ``read_leaf``, ``lint_file``, ``load_leaves`` (here), ``diff.changed_files`` and
``documents.fetch_documents``. Importing this package is cheap: yaml and jsonschema load on first use.
"""

from __future__ import annotations

from pathlib import Path

from labrador.errors import TaxonomyError
from labrador.taxonomy.models import Document, DocumentRef, Issue, Leaf, QnA, SeedExample

__all__ = ["Document", "DocumentRef", "Issue", "Leaf", "QnA", "SeedExample", "TaxonomyError", "format_issues",
           "lint_file", "load_leaves", "read_leaf"]


def format_issues(issues: list[Issue]) -> str:
    return "\n".join(str(i) for i in issues)


def lint_file(qna_path: str | Path, taxonomy_root: str | Path, yaml_rules: str | Path | None = None) -> list[Issue]:
    """Every problem in one qna.yaml (errors and warnings), sorted by line and column."""
    from labrador.taxonomy.lint import analyze
    from labrador.taxonomy.yamlrules import load_rules

    return analyze(Path(qna_path), Path(taxonomy_root), load_rules(yaml_rules)).issues


def read_leaf(qna_path: str | Path, taxonomy_root: str | Path, yaml_rules: str | Path | None = None) -> Leaf:
    """The Leaf of a valid qna.yaml; TaxonomyError listing every error otherwise (warnings are not errors)."""
    from labrador.taxonomy.lint import analyze
    from labrador.taxonomy.yamlrules import load_rules

    result = analyze(Path(qna_path), Path(taxonomy_root), load_rules(yaml_rules))
    if result.leaf is None:
        raise TaxonomyError(_invalid_message(result.errors))
    return result.leaf


def load_leaves(taxonomy_root: str | Path, base: str = "empty", yaml_rules: str | Path | None = None) -> list[Leaf]:
    """The valid leaves changed since ``base`` (``empty`` = the whole tree), sorted by path.

    Raises TaxonomyError listing every error of every file when any changed file is invalid.
    """
    from labrador.taxonomy.diff import changed_files
    from labrador.taxonomy.lint import analyze_many
    from labrador.taxonomy.yamlrules import load_rules

    root = Path(taxonomy_root)
    rules = load_rules(yaml_rules)
    leaves: list[Leaf] = []
    errors: list[Issue] = []
    for result in analyze_many(changed_files(root, base).changed, root, rules):
        errors.extend(result.errors)
        if result.leaf is not None:
            leaves.append(result.leaf)
    if errors:
        raise TaxonomyError(_invalid_message(errors))
    return sorted(leaves, key=lambda leaf: leaf.rel_path)


def _invalid_message(errors: list[Issue]) -> str:
    files = len({i.path for i in errors})
    head = (f"The taxonomy has {len(errors)} error{'s' if len(errors) != 1 else ''} in {files} "
            f"file{'s' if files != 1 else ''}; fix them and run `ilab taxonomy diff` again:")
    return head + "\n" + format_issues(errors)
