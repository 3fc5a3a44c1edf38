"""Knowledge documents: local folders, real git repos (file://) cloned into the cache, and every refusal."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from labrador import paths
from labrador.errors import TaxonomyError
from labrador.taxonomy import Document, read_leaf
from labrador.taxonomy.documents import DocumentError, fetch_documents, validate_repo_url

FIXTURES = Path(__file__).parent / "fixtures" / "taxonomy"
KNOWLEDGE = (FIXTURES / "knowledge_v3.yaml").read_text()
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
LEAF = "knowledge/space/moon"


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}).stdout.strip()


def make_pdf(text: str) -> bytes:
    """A one-page PDF with real text (Helvetica), built by hand so the test needs no PDF writer."""
    content = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    return out + b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)


def leaf_with(root: Path, document: str):
    """A valid knowledge leaf whose `document:` block is replaced by ``document``."""
    path = root / LEAF / "qna.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(KNOWLEDGE[: KNOWLEDGE.index("document:")] + document)
    return read_leaf(path, root)


@pytest.fixture
def doc_repo(tmp_path: Path) -> tuple[Path, str]:
    repo = tmp_path / "docs-repo"
    (repo / "chapters").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "chapters" / "moon.md").write_text("# The Moon\n\nThe Moon orbits the Earth.\n")
    (repo / "chapters" / "sun.pdf").write_bytes(make_pdf("The Sun is a star."))
    (repo / "notes.docx").write_bytes(b"PK\x03\x04 not really a docx")
    os.symlink("/etc/passwd", repo / "chapters" / "secret.md")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "docs")
    return repo, git(repo, "rev-parse", "HEAD")


def test_local_folder_documents(tmp_path: Path) -> None:
    (tmp_path / LEAF / "docs").mkdir(parents=True)
    (tmp_path / LEAF / "docs" / "moon.md").write_text("# Moon\n")
    (tmp_path / LEAF / "docs" / "b.txt").write_text("plain\n")
    leaf = leaf_with(tmp_path, 'document:\n  folder: docs\n  patterns: ["*.md", "*.txt", "moon.md"]\n')
    assert fetch_documents(leaf, tmp_path) == [Document("moon.md", "# Moon\n"), Document("b.txt", "plain\n")]


def test_repo_documents_are_cloned_into_the_cache_and_reused(tmp_path: Path, doc_repo: tuple[Path, str]) -> None:
    repo, commit = doc_repo
    leaf = leaf_with(tmp_path / "tax", f"document:\n  repo: file://{repo}\n  commit: {commit}\n"
                                        "  patterns:\n    - chapters/*.md\n    - '**/*.pdf'\n")
    docs = fetch_documents(leaf, tmp_path / "tax")
    # the symlink to /etc/passwd arrives as a small file holding the link's target, never the target's content
    assert docs == [Document("chapters/moon.md", "# The Moon\n\nThe Moon orbits the Earth.\n"),
                    Document("chapters/secret.md", "/etc/passwd"),
                    Document("chapters/sun.pdf", "The Sun is a star.")]
    cached = list((paths.cache_dir() / "documents").glob(f"*-{commit}"))
    assert len(cached) == 1 and (cached[0] / "chapters" / "moon.md").is_file()
    subprocess.run(["rm", "-rf", str(repo)], check=True)  # a second fetch must not need the repository
    assert fetch_documents(leaf, tmp_path / "tax") == docs


def test_abbreviated_commit_and_missing_commit(tmp_path: Path, doc_repo: tuple[Path, str]) -> None:
    repo, commit = doc_repo
    leaf = leaf_with(tmp_path / "tax", f"document:\n  repo: file://{repo}\n  commit: {commit[:10]}\n"
                                        "  patterns: [chapters/moon.md]\n")
    assert [d.path for d in fetch_documents(leaf, tmp_path / "tax")] == ["chapters/moon.md"]
    leaf = leaf_with(tmp_path / "tax", f"document:\n  repo: file://{repo}\n  commit: '{'0' * 40}'\n"
                                        "  patterns: [chapters/moon.md]\n")
    with pytest.raises(DocumentError) as err:
        fetch_documents(leaf, tmp_path / "tax")
    assert str(err.value) == (f"{LEAF}/qna.yaml: The commit {'0' * 40} does not exist in file://{repo}; check the "
                              "hash with `git log` in that repository and that the commit was pushed.")
    assert err.value.yaml_path == ".document.commit"


def test_unreachable_repo_is_one_clear_line(tmp_path: Path) -> None:
    leaf = leaf_with(tmp_path, f"document:\n  repo: file://{tmp_path}/missing.git\n  commit: abc1234\n"
                               "  patterns: ['*.md']\n")
    with pytest.raises(DocumentError) as err:
        fetch_documents(leaf, tmp_path)
    message = str(err.value)
    assert message.startswith(f"{LEAF}/qna.yaml: Cannot fetch the documents repository file://{tmp_path}/missing.git: "
                              "fatal: ")
    assert message.endswith("Check the URL and your network connection, or put the documents in a local 'folder'.")
    assert "\n" not in message


@pytest.mark.parametrize(("url", "message"), [
    ("-oProxyCommand=touch /tmp/x", "The document repo '-oProxyCommand=touch /tmp/x' is not a usable git URL (it is "
     "empty, starts with '-' or contains spaces); write a URL such as https://github.com/org/repo.git."),
    ("ext::sh -c touch% /tmp/x", "The document repo 'ext::sh -c touch% /tmp/x' is not a usable git URL (it is empty, "
     "starts with '-' or contains spaces); write a URL such as https://github.com/org/repo.git."),
    ("ext::sh", "The document repo 'ext::sh' is not an https://, ssh://, git:// or file:// URL; for a repository on "
     "this computer write file:///absolute/path/to/repo."),
    ("http://example.com/r.git", "The document repo 'http://example.com/r.git' uses the 'http' transport, which "
     "labrador does not allow; use an https://, ssh://, git:// or file:// URL."),
    ("/srv/docs", "The document repo '/srv/docs' is not an https://, ssh://, git:// or file:// URL; for a "
     "repository on this computer write file:///absolute/path/to/repo."),
])
def test_unsafe_repo_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(DocumentError) as err:
        validate_repo_url(url)
    assert str(err.value) == message


def test_allowed_repo_urls() -> None:
    for url in ("https://github.com/a/b.git", "ssh://git@host/a.git", "git://host/a", "file:///srv/a",
                "git@github.com:org/repo.git"):
        validate_repo_url(url)


def test_commit_must_be_a_hash(tmp_path: Path) -> None:
    leaf = leaf_with(tmp_path, "document:\n  repo: https://example.com/r.git\n  commit: main\n  patterns: ['*.md']\n")
    with pytest.raises(DocumentError, match="The document commit 'main' is not a commit hash"):
        fetch_documents(leaf, tmp_path)


@pytest.mark.parametrize(("pattern", "message"), [
    ("/etc/passwd", "The document pattern '/etc/passwd' is empty or absolute; write it relative to folder 'docs', "
     "for example '*.md'."),
    ("../../../../../../etc/passwd", "The document pattern '../../../../../../etc/passwd' uses '..' to leave folder "
     "'docs'; patterns must stay inside it."),
    ("sub/../../x.md", "The document pattern 'sub/../../x.md' uses '..' to leave folder 'docs'; patterns must stay "
     "inside it."),
    ("*.rst", "The document pattern '*.rst' matches no files in folder 'docs'; check the file names and folders "
     "(patterns are case-sensitive)."),
    ("link.md", "The document link.md (matched by 'link.md') is a link to {outside}, outside folder 'docs'; "
     "replace the link with the file itself."),
])
def test_patterns_stay_inside_the_documents(tmp_path: Path, pattern: str, message: str) -> None:
    root = tmp_path / "tax"
    docs = root / LEAF / "docs"
    docs.mkdir(parents=True)
    outside = tmp_path / "outside.md"
    outside.write_text("secret\n")
    os.symlink(outside, docs / "link.md")
    leaf = leaf_with(root, f"document:\n  folder: docs\n  patterns: ['{pattern}']\n")
    with pytest.raises(DocumentError) as err:
        fetch_documents(leaf, root)
    assert str(err.value) == f"{LEAF}/qna.yaml: " + message.format(outside=outside)


def test_folder_must_stay_inside_the_taxonomy(tmp_path: Path) -> None:
    root = tmp_path / "tax"
    (tmp_path / "elsewhere").mkdir()
    leaf = leaf_with(root, "document:\n  folder: ../../../../elsewhere\n  patterns: ['*.md']\n")
    with pytest.raises(DocumentError) as err:
        fetch_documents(leaf, root)
    assert str(err.value) == (f"{LEAF}/qna.yaml: The document folder '../../../../elsewhere' points outside the "
                              f"taxonomy ({tmp_path / 'elsewhere'}); keep the documents inside the taxonomy "
                              "repository.")
    leaf = leaf_with(root, f"document:\n  folder: {tmp_path}\n  patterns: ['*.md']\n")
    with pytest.raises(DocumentError, match="is an absolute path; write it relative to the folder of qna.yaml"):
        fetch_documents(leaf, root)


def test_unreadable_types_are_named(tmp_path: Path, doc_repo: tuple[Path, str]) -> None:
    repo, commit = doc_repo
    leaf = leaf_with(tmp_path / "tax", f"document:\n  repo: file://{repo}\n  commit: {commit}\n"
                                        "  patterns: ['*.docx']\n")
    with pytest.raises(TaxonomyError) as err:
        fetch_documents(leaf, tmp_path / "tax")
    assert str(err.value) == (f"{LEAF}/qna.yaml: The document notes.docx (file://{repo} at {commit}) is a '.docx' "
                              "file, which labrador cannot read; convert it to Markdown (.md), plain text (.txt) or "
                              "PDF, or change the patterns to skip it.")
    docs = tmp_path / "tax" / LEAF / "docs"
    docs.mkdir()
    (docs / "latin1.md").write_bytes("caf\xe9\n".encode("latin-1"))
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4\nnot a pdf")
    leaf = leaf_with(tmp_path / "tax", "document:\n  folder: docs\n  patterns: ['*.md']\n")
    with pytest.raises(DocumentError, match=r"The document latin1.md \(folder 'docs'\) is not UTF-8 text"):
        fetch_documents(leaf, tmp_path / "tax")
    leaf = leaf_with(tmp_path / "tax", "document:\n  folder: docs\n  patterns: ['*.pdf']\n")
    with pytest.raises(DocumentError, match=r"The PDF broken.pdf \(folder 'docs'\) cannot be read"):
        fetch_documents(leaf, tmp_path / "tax")


def test_cli_check_documents_reports_a_bad_repo_on_its_line(tmp_path: Path, doc_repo: tuple[Path, str],
                                                             run_ilab) -> None:
    repo, commit = doc_repo
    root = tmp_path / "tax"
    leaf_with(root, f"document:\n  repo: file://{repo}\n  commit: {commit}\n  patterns: ['chapters/*.md']\n")
    ok = run_ilab("taxonomy", "diff", "--taxonomy-path", str(root), "--taxonomy-base", "empty", "--check-documents")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    leaf_with(root, f"document:\n  repo: file://{repo}\n  commit: '{'1' * 40}'\n  patterns: ['chapters/*.md']\n")
    offline = run_ilab("taxonomy", "diff", "--taxonomy-path", str(root), "--taxonomy-base", "empty")
    assert offline.returncode == 0  # documents are not fetched without --check-documents
    bad = run_ilab("taxonomy", "diff", "--taxonomy-path", str(root), "--taxonomy-base", "empty", "--check-documents")
    assert bad.returncode == 1
    assert f"ERROR: {root / LEAF / 'qna.yaml'}:48:11 [.document.commit] The commit {'1' * 40} does not exist in " \
           f"file://{repo}; check the hash with `git log` in that repository and that the commit was pushed." \
           in bad.stdout.splitlines()
