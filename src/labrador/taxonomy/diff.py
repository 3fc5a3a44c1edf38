"""Which taxonomy files changed since a base ref: the files `ilab taxonomy diff` validates.

Changed = differences between the merge base of ``base`` and HEAD and the working tree (commits on the
branch, staged and unstaged edits) plus untracked files; deleted files are listed separately as removed.
``empty`` means every taxonomy file. The base ref is resolved to a commit hash before it is used anywhere,
and refs starting with '-' are refused, so a ref can never be read by git as an option. Links and special
files are listed as they are (never followed), so that the lint refuses them by name: a link to a folder
outside the taxonomy is listed too, rather than its leaves being skipped in silence.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from labrador.errors import TaxonomyError
from labrador.taxonomy.gitutil import last_line, run_git
from labrador.userfiles import within

EMPTY_BASE = "empty"
DEFAULT_BASE = "origin/main"
FALLBACKS = ("main", "HEAD")
TREES = ("knowledge", "compositional_skills", "foundational_skills")


@dataclass
class DiffResult:
    changed: list[Path]  # absolute paths, sorted
    removed: list[str]  # paths relative to the taxonomy root (posix), sorted
    base_used: str
    notice: str | None = None


def is_taxonomy_file(rel: str) -> bool:
    """qna.yaml-like files: any .yaml/.yml under the three trees (misnamed ones get a lint error) and any
    file named qna.yaml/qna.yml elsewhere (a misplaced one gets a lint error)."""
    parts = rel.split("/")
    name = parts[-1].lower()
    if name in ("qna.yaml", "qna.yml"):
        return True
    return parts[0] in TREES and len(parts) > 1 and name.endswith((".yaml", ".yml"))


def is_folder_link_out(root: Path, rel: str) -> bool:
    """A symbolic link in the trees to a folder outside the taxonomy. Nothing below it is read (links out are
    never followed), so it is listed with the changed files and the lint reports it, instead of its leaves
    being skipped in silence."""
    path = root / rel
    if rel.split("/")[0] not in TREES or not os.path.islink(path) or not os.path.isdir(path):
        return False
    return not within(os.path.realpath(path), os.path.realpath(root))


def all_files(root: Path) -> list[Path]:
    found = []
    for current, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel_dir = Path(current).relative_to(root).as_posix()
        for name in files:
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if is_taxonomy_file(rel):
                found.append(root / rel)
        for name in dirs:  # os.walk lists links to folders here, and does not enter them
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if is_folder_link_out(root, rel):
                found.append(root / rel)
    return sorted(found)


def _resolve(root: Path, ref: str) -> str | None:
    proc = run_git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"], root, check=False)
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def changed_files(taxonomy_root: str | Path, base: str = DEFAULT_BASE) -> DiffResult:
    root = Path(taxonomy_root)
    if not root.is_dir():
        raise TaxonomyError(f"The taxonomy folder {root} does not exist; run `ilab config init` to create one, or "
                            "pass --taxonomy-path with the folder of your taxonomy.")
    if base == EMPTY_BASE:
        return DiffResult(all_files(root), [], EMPTY_BASE)
    if not base or base.startswith("-") or any(c.isspace() or ord(c) < 32 for c in base):
        raise TaxonomyError(f"The taxonomy base {base!r} is not a valid git ref; give a branch, tag or commit "
                            "such as origin/main, or 'empty' to validate every file.")
    inside = run_git(["rev-parse", "--is-inside-work-tree"], root, check=False)
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        said = last_line(inside.stderr)
        if "dubious ownership" in inside.stderr:
            raise TaxonomyError(f"git refuses to work in {root} because the folder belongs to another user ({said}); "
                                f"if you trust it, run `git config --global --add safe.directory {root}`, or use "
                                "--taxonomy-base empty to validate every file without git.")
        raise TaxonomyError(f"{root} is not a git repository, so there is no base to compare with (git says: "
                            f"{said}); run `git init` there, or use --taxonomy-base empty to validate every file.")
    head = _resolve(root, "HEAD")
    notice = None
    base_used, sha = base, _resolve(root, base)
    if sha is None and base == DEFAULT_BASE:
        for fallback in FALLBACKS:
            sha = _resolve(root, fallback)
            if sha is not None:
                base_used = fallback
                notice = (f"The base '{base}' does not exist in {root}; comparing with '{fallback}' instead"
                          + (" (the last commit, so only uncommitted changes are listed)." if fallback == "HEAD"
                             else "."))
                break
    if sha is None and head is None:
        notice = f"The repository {root} has no commits yet; every taxonomy file counts as new."
        return DiffResult(_untracked(root), [], "(no commits)", notice)
    if sha is None:
        raise TaxonomyError(f"The taxonomy base '{base}' is not a branch, tag or commit in {root}; check the name "
                            "with `git branch -a`, or use --taxonomy-base empty to validate every file.")
    since = sha
    if head is not None:
        merge_base = run_git(["merge-base", sha, head], root, check=False)
        if merge_base.returncode == 0 and merge_base.stdout.strip():
            since = merge_base.stdout.strip()
    out = run_git(["diff", "--name-status", "-z", "--no-renames", "--relative", since, "--"], root).stdout
    fields = out.split("\0")
    changed: set[Path] = set(_untracked(root))
    removed: list[str] = []
    for status, rel in zip(fields[0::2], fields[1::2], strict=False):
        if not rel or not (is_taxonomy_file(rel) or is_folder_link_out(root, rel)):
            continue
        if status.startswith("D"):
            removed.append(rel)
        elif os.path.lexists(root / rel):  # links and special files too: the lint refuses them by name
            changed.add(root / rel)
    return DiffResult(sorted(changed), sorted(removed), base_used, notice)


def _untracked(root: Path) -> list[Path]:
    out = run_git(["ls-files", "-z", "--others", "--exclude-standard"], root).stdout
    return sorted(root / rel for rel in out.split("\0") if rel and (is_taxonomy_file(rel)
                                                                     or is_folder_link_out(root, rel)))
