"""Fetch a knowledge leaf's documents as text.

Sources: a git ``repo`` at ``commit`` (cloned once into ``<cache>/documents/<hash(repo)>-<commit>/`` and
reused), or a local ``folder`` relative to the qna.yaml, which must stay inside the taxonomy. ``patterns``
are globs expanded inside that checkout/folder only. Refused: patterns that are absolute or contain '..',
matches that are links pointing outside, repo URLs starting with '-' or using a transport other than https,
ssh, git, file. Markdown and plain text are read as they are; PDF is converted with pypdf.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from pathlib import Path

from labrador import paths
from labrador.errors import TaxonomyError, UserFileError
from labrador.files import atomic_write_text
from labrador.taxonomy.gitutil import ALLOWED_PROTOCOLS, last_line, run_git
from labrador.taxonomy.models import Document, Leaf
from labrador.userfiles import DOCUMENT, PDF_DOCUMENT, decode, read_bytes

__all__ = ["Document", "DocumentError", "checkout", "fetch_documents", "read_document", "validate_repo_url"]

TEXT_SUFFIXES = (".md", ".markdown", ".txt")
DOCUMENTS_TREE = "the documents' folder"  # the root of a document, in messages
_SCP_LIKE = re.compile(r"^[A-Za-z0-9_.+-]+@[A-Za-z0-9_.-]+:[^\s]+$")  # git@github.com:org/repo.git (ssh)
_COMMIT = re.compile(r"^[0-9a-fA-F]{4,64}$")


class DocumentError(TaxonomyError):
    """A document could not be fetched or read; ``yaml_path`` names the qna.yaml key at fault."""

    def __init__(self, message: str, yaml_path: str | None = None) -> None:
        super().__init__(message)
        self.yaml_path = yaml_path


def validate_repo_url(repo: str) -> None:
    if not repo or repo != repo.strip() or repo.startswith("-") or any(c.isspace() or ord(c) < 32 for c in repo):
        raise DocumentError(f"The document repo {repo!r} is not a usable git URL (it is empty, starts with '-' or "
                            "contains spaces); write a URL such as https://github.com/org/repo.git.",
                            ".document.repo")
    if "://" in repo:
        scheme = repo.split("://", 1)[0].lower()
        if scheme in ALLOWED_PROTOCOLS:
            return
        raise DocumentError(f"The document repo {repo!r} uses the '{scheme}' transport, which labrador does not "
                            "allow; use an https://, ssh://, git:// or file:// URL.", ".document.repo")
    if _SCP_LIKE.match(repo) and "::" not in repo:
        return
    raise DocumentError(f"The document repo {repo!r} is not an https://, ssh://, git:// or file:// URL; for a "
                        "repository on this computer write file:///absolute/path/to/repo.", ".document.repo")


def checkout(repo: str, commit: str, *, timeout: float = 600) -> Path:
    """A directory holding ``repo`` at ``commit`` (from the cache when fetched before)."""
    validate_repo_url(repo)
    if not _COMMIT.match(commit or ""):
        raise DocumentError(f"The document commit {commit!r} is not a commit hash; write the hash (letters a-f "
                            "and digits) shown by `git log` in the documents repository.", ".document.commit")
    cache = paths.cache_dir() / "documents"
    key = f"{hashlib.sha256(repo.encode()).hexdigest()[:16]}-{commit.lower()}"
    final, meta = cache / key, cache / f"{key}.json"
    if meta.is_file() and final.is_dir():
        return final
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / f".tmp-{key}-{uuid.uuid4().hex[:8]}"
    try:
        sha = _fetch(repo, commit, tmp, timeout)
        shutil.rmtree(tmp / ".git")
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.is_dir():
                raise
            shutil.rmtree(tmp)  # another process finished the same checkout first; keep its copy
        atomic_write_text(meta, json.dumps({"repo": repo, "commit": commit, "sha": sha}) + "\n")
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _fetch(repo: str, commit: str, dest: Path, timeout: float) -> str:
    run_git(["init", "-q", str(dest)], dest.parent)
    fetched = False
    if len(commit) in (40, 64):  # a full hash can be fetched alone, without the whole history
        proc = run_git(["fetch", "-q", "--depth", "1", "--no-tags", "--", repo, commit], dest, timeout=timeout,
                       hardened=True, check=False)
        fetched = proc.returncode == 0
    if not fetched:
        proc = run_git(["fetch", "-q", "--no-tags", "--", repo, "+refs/heads/*:refs/remotes/origin/*",
                        "+refs/tags/*:refs/tags/*"], dest, timeout=timeout, hardened=True, check=False)
        if proc.returncode != 0:
            raise DocumentError(f"Cannot fetch the documents repository {repo}: {last_line(proc.stderr)} Check the "
                                "URL and your network connection, or put the documents in a local 'folder'.",
                                ".document.repo")
    resolved = run_git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{commit}^{{commit}}"], dest,
                       check=False)
    sha = resolved.stdout.strip()
    if resolved.returncode != 0 or not sha:
        raise DocumentError(f"The commit {commit} does not exist in {repo}; check the hash with `git log` in that "
                            "repository and that the commit was pushed.", ".document.commit")
    run_git(["checkout", "-q", "--detach", sha], dest, hardened=True)
    return sha


def _folder_root(leaf: Leaf, taxonomy_root: Path, folder: str) -> Path:
    if Path(folder).is_absolute() or folder.startswith("~"):
        raise DocumentError(f"The document folder {folder!r} is an absolute path; write it relative to the folder "
                            "of qna.yaml (for example 'docs'), inside the taxonomy.", ".document.folder")
    base = (leaf.qna_path.parent / folder).resolve()
    root = taxonomy_root.resolve()
    if not base.is_relative_to(root):
        raise DocumentError(f"The document folder {folder!r} points outside the taxonomy ({base}); keep the "
                            "documents inside the taxonomy repository.", ".document.folder")
    if not base.is_dir():
        raise DocumentError(f"The document folder {folder!r} does not exist (looked for {base}); create it or fix "
                            "the name.", ".document.folder")
    return base


def expand_patterns(base: Path, patterns: list[str], where: str) -> list[Path]:
    """Files matching the globs, strictly inside ``base``; sorted, without duplicates."""
    base_resolved = base.resolve()
    found: dict[Path, None] = {}
    for index, pattern in enumerate(patterns):
        ypath = f".document.patterns[{index}]"
        parts = re.split(r"[/\\]", pattern)
        if not pattern or pattern.startswith(("/", "\\", "~")) or re.match(r"^[A-Za-z]:", pattern):
            raise DocumentError(f"The document pattern {pattern!r} is empty or absolute; write it relative to "
                                f"{where}, for example '*.md'.", ypath)
        if ".." in parts:
            raise DocumentError(f"The document pattern {pattern!r} uses '..' to leave {where}; patterns must stay "
                                "inside it.", ypath)
        try:
            matches = sorted(base.glob(pattern))
        except (ValueError, NotImplementedError) as err:
            raise DocumentError(f"The document pattern {pattern!r} is not a valid file pattern ({err}); use forms "
                                "like '*.md' or 'docs/**/*.md'.", ypath) from None
        files = []
        for match in matches:
            rel_parts = match.relative_to(base).parts
            if any(p == ".git" for p in rel_parts):
                continue
            resolved = match.resolve()
            if not resolved.is_relative_to(base_resolved):
                raise DocumentError(f"The document {match.relative_to(base).as_posix()} (matched by {pattern!r}) is "
                                    f"a link to {resolved}, outside {where}; replace the link with the file itself.",
                                    ypath)
            if not resolved.is_dir():  # FIFOs and devices too: the reader refuses them by name
                files.append(match)
        if not files:
            raise DocumentError(f"The document pattern {pattern!r} matches no files in {where}; check the file "
                                "names and folders (patterns are case-sensitive).", ypath)
        found.update(dict.fromkeys(files))
    return list(found)


def read_document(path: Path, shown: str, root: Path | None = None) -> str:
    """Text of one document: Markdown/plain text as they are, PDF through pypdf; other types are refused.
    Read through `labrador.userfiles`: a regular file (inside ``root`` when given) under its size cap."""
    suffix = path.suffix.lower()
    try:
        if suffix in TEXT_SUFFIXES:
            return decode(read_bytes(path, DOCUMENT, root, DOCUMENTS_TREE), path)
        if suffix == ".pdf":
            return _read_pdf(read_bytes(path, PDF_DOCUMENT, root, DOCUMENTS_TREE), shown)
    except UserFileError as err:
        raise DocumentError(f"The document {shown} {err.problem}") from None
    raise DocumentError(f"The document {shown} is a '{suffix or 'no extension'}' file, which labrador cannot read; "
                        "convert it to Markdown (.md), plain text (.txt) or PDF, or change the patterns to skip it.")


def _read_pdf(data: bytes, shown: str) -> str:
    import io

    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentError(f"The PDF {shown} is password-protected; save an unprotected copy.")
        text = "\n\n".join((page.extract_text() or "").strip() for page in reader.pages).strip()
    except DocumentError:
        raise
    except Exception as err:  # noqa: BLE001 - pypdf raises many types on broken files
        raise DocumentError(f"The PDF {shown} cannot be read ({type(err).__name__}: {err}); check that the file "
                            "opens in a PDF viewer, or convert it to Markdown.") from None
    if not text:
        raise DocumentError(f"The PDF {shown} contains no text (it may be scanned images); convert it to Markdown "
                            "or use a PDF with real text.")
    return text


def fetch_documents(leaf: Leaf, taxonomy_root: str | Path, *, timeout: float = 600) -> list[Document]:
    """The documents of a knowledge leaf, in pattern order; DocumentError (a TaxonomyError) on any problem."""
    try:
        return fetch_documents_unprefixed(leaf, taxonomy_root, timeout=timeout)
    except DocumentError as err:
        raise DocumentError(f"{leaf.rel_path}: {err}", err.yaml_path) from None


def fetch_documents_unprefixed(leaf: Leaf, taxonomy_root: str | Path, *, timeout: float = 600) -> list[Document]:
    """Like fetch_documents, but messages do not start with the leaf's path (the lint report adds it)."""
    ref = leaf.document
    if ref is None:
        raise DocumentError("This leaf has no 'document', so there is nothing to fetch; knowledge leaves need "
                            "'document' with 'patterns' and 'repo'+'commit' or 'folder'.")
    if ref.folder is not None:
        base, where = _folder_root(leaf, Path(taxonomy_root), ref.folder), f"folder {ref.folder!r}"
    else:
        base, where = checkout(ref.repo or "", ref.commit or "", timeout=timeout), f"{ref.repo} at {ref.commit}"
    rels = [file.relative_to(base).as_posix() for file in expand_patterns(base, ref.patterns, where)]
    return [Document(rel, read_document(base / rel, f"{rel} ({where})", base)) for rel in rels]
