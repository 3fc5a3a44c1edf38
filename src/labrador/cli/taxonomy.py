"""`ilab taxonomy diff`: list the taxonomy files changed since a base ref and validate them.

Thin on purpose: yaml, jsonschema and the config (pydantic) are imported inside the command.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import click


def taxonomy_options(command: Callable[..., None]) -> Callable[..., None]:
    """--taxonomy-path and --taxonomy-base, shared by every command that reads the taxonomy's changes."""
    command = click.option(
        "--taxonomy-base", default=None,
        help="Git ref to compare with (default: config generate.taxonomy_base, origin/main; falls back to main, "
             "then HEAD), or 'empty' to take every leaf.")(command)
    return click.option("--taxonomy-path", type=click.Path(file_okay=False), default=None,
                        help="Taxonomy folder, a git repository (default: config generate.taxonomy_path).")(command)


@click.group()
def taxonomy() -> None:
    """Validate the taxonomy (qna.yaml files)."""


@taxonomy.command()
@taxonomy_options
@click.option("--yaml-rules", type=click.Path(dir_okay=False, exists=True), default=None,
              help="YAML file overriding the lint rules, e.g. 'rules: {line-length: {max: 100}}'.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing; only the exit code tells (0 valid, 1 not).")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable JSON report.")
@click.option("--check-documents", is_flag=True,
              help="Also fetch and read knowledge documents (clones repos; needs the network for remote ones).")
@click.option("--strict", is_flag=True, help="Count warnings as errors (as InstructLab's `ilab diff` does).")
def diff(taxonomy_path: str | None, taxonomy_base: str | None, yaml_rules: str | None, quiet: bool,
         as_json: bool, check_documents: bool, strict: bool) -> None:
    """List qna.yaml files added or changed since the base ref (untracked ones too) and validate them."""
    from labrador.errors import LabradorError
    from labrador.taxonomy.report import build_report

    try:
        if taxonomy_path is None or taxonomy_base is None:
            from labrador.config import load_config

            generate = load_config().generate
            taxonomy_path = taxonomy_path or generate.taxonomy_path
            taxonomy_base = taxonomy_base or generate.taxonomy_base
        report = build_report(taxonomy_path, taxonomy_base, yaml_rules, check_documents)
    except LabradorError as err:
        if quiet:
            sys.exit(1)
        if as_json:
            click.echo(json.dumps({"valid": False, "error": str(err)}, indent=2))
            sys.exit(1)
        raise
    valid = report.valid(strict)
    if quiet:
        sys.exit(0 if valid else 1)
    if as_json:
        click.echo(json.dumps(report.to_dict(strict), indent=2))
        sys.exit(0 if valid else 1)
    if report.diff.notice:
        click.echo(f"Note: {report.diff.notice}", err=True)
    since = "in the whole taxonomy" if report.diff.base_used == "empty" else f"since {report.diff.base_used}"
    if report.files:
        click.echo(f"Taxonomy files changed {since}:")
        for f in report.files:
            click.echo(f"  {f.rel_path}")
    else:
        click.echo(f"No taxonomy files changed {since}.")
    if report.diff.removed:
        click.echo("Removed (not validated):")
        for rel in report.diff.removed:
            click.echo(f"  {rel}")
    for f in report.files:
        for issue in f.issues:
            click.echo(str(issue))
    if valid:
        warnings = f" ({report.warnings} warning{'s' if report.warnings != 1 else ''})" if report.warnings else ""
        click.echo(f"Taxonomy in {report.taxonomy_path} is valid :){warnings}")
        sys.exit(0)
    bad = sum(not f.valid or (strict and f.issues) for f in report.files)
    counted = report.errors + (report.warnings if strict else 0)
    click.echo(f"Taxonomy in {report.taxonomy_path} is not valid: {counted} problem{'s' if counted != 1 else ''} "
               f"in {bad} file{'s' if bad != 1 else ''}. Fix the lines listed above and run `ilab taxonomy diff` "
               "again.")
    sys.exit(1)
