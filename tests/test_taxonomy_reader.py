"""read_leaf: the Leaf a valid file becomes, old formats with deprecation warnings, and a fuzz test showing
that no input makes the reader raise anything but TaxonomyError."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labrador.errors import TaxonomyError
from labrador.taxonomy import DocumentRef, QnA, lint_file, read_leaf

FIXTURES = Path(__file__).parent / "fixtures" / "taxonomy"


def put(root: Path, rel: str, fixture: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text((FIXTURES / fixture).read_text())
    return path


def test_knowledge_leaf_fields(tmp_path: Path) -> None:
    path = put(tmp_path, "knowledge/space/moon/qna.yaml", "knowledge_v3.yaml")
    leaf = read_leaf(path, tmp_path)
    assert (leaf.kind, leaf.version, leaf.name, leaf.rel_path) == (
        "knowledge", 3, "knowledge->space->moon", "knowledge/space/moon/qna.yaml")
    assert leaf.qna_path == path and leaf.qna_path.is_absolute()
    assert (leaf.created_by, leaf.domain, leaf.task_description) == ("alice", "Astronomy", None)
    assert leaf.document_outline == "Basic facts about the Moon of the Earth."
    assert leaf.document == DocumentRef(repo=None, commit=None, patterns=["*.md"], folder="docs")
    assert len(leaf.seed_examples) == 5
    first = leaf.seed_examples[0]
    assert first.context == "The Moon is the only natural satellite of the Earth."
    assert first.question is None
    assert first.questions_and_answers[1] == QnA("How many natural satellites does the Earth have?", "One, the Moon.")


def test_skill_leaf_kinds(tmp_path: Path) -> None:
    free = read_leaf(put(tmp_path, "compositional_skills/writing/haiku/qna.yaml", "freeform_v3.yaml"), tmp_path)
    assert (free.kind, free.task_description, free.domain, free.document) == (
        "freeform_skill", "Write a haiku about the given subject.", None, None)
    assert free.seed_examples[0].question == "Write a haiku about rain."
    assert free.seed_examples[0].context is None and free.seed_examples[0].questions_and_answers == []
    grounded = read_leaf(put(tmp_path, "compositional_skills/grounded/people/qna.yaml", "grounded_v3.yaml"), tmp_path)
    assert grounded.kind == "grounded_skill"
    assert grounded.seed_examples[1].context == "The letter from Tom reached Jerry on Monday."
    foundational = read_leaf(put(tmp_path, "foundational_skills/poetry/haiku/qna.yaml", "freeform_v3.yaml"),
                             tmp_path)
    assert (foundational.kind, foundational.name) == ("freeform_skill", "foundational_skills->poetry->haiku")


def test_version_1_skill_is_read_with_deprecation_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = put(tmp_path, "compositional_skills/math/roman/qna.yaml", "skill_v1.yaml")
    assert [str(i) for i in lint_file(path, tmp_path)] == [
        "WARN: compositional_skills/math/roman/qna.yaml:1:1 This file uses taxonomy format version 1 (no 'version' "
        "key), which is deprecated: it is still read, but please update it to version 3: add 'version: 3' and make "
        "sure there are at least 5 different seed examples. See docs/taxonomy.md."]
    leaf = read_leaf(path, tmp_path)
    assert (leaf.version, leaf.kind, len(leaf.seed_examples)) == (1, "freeform_skill", 1)


def test_version_2_knowledge_is_read_with_its_own_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = put(tmp_path, "knowledge/history/rome/qna.yaml", "knowledge_v2.yaml")
    assert [str(i) for i in lint_file(path, tmp_path)] == [
        "WARN: knowledge/history/rome/qna.yaml:1:1 This file uses taxonomy format version 2 ('version: 2'), which "
        "is deprecated: it is still read, but please update it to version 3: add 'version: 3', 'document_outline', "
        "group the questions under seed examples that each have a 'context' and at least 3 "
        "'questions_and_answers', and remove 'task_description'. See docs/taxonomy.md."]
    leaf = read_leaf(path, tmp_path)
    assert (leaf.version, leaf.kind, leaf.domain) == (2, "knowledge", "History")
    assert leaf.document == DocumentRef("https://github.com/example/docs.git",
                                        "0123456789abcdef0123456789abcdef01234567", ["rome.md"], None)
    # each old question/answer seed also appears as a one-item questions_and_answers list
    assert leaf.seed_examples[0].questions_and_answers == [QnA("Who was the first Roman emperor?", "Augustus.")]
    # version 2 rules: 5 seed examples and a document with repo+commit+patterns (no folder)
    path.write_text(path.read_text().replace("  commit: 0123456789abcdef0123456789abcdef01234567\n", "  folder: d\n"))
    issues = [str(i) for i in lint_file(path, tmp_path) if i.severity == "error"]
    assert issues == [
        "ERROR: knowledge/history/rome/qna.yaml:6:3 [.document] 'commit' is missing in 'document'. Add 'commit: "
        "<the commit hash, see `git log`>'.",
        "ERROR: knowledge/history/rome/qna.yaml:7:3 [.document.folder] 'folder' is not a known key here; remove it "
        "or fix its spelling (allowed keys: commit, patterns, repo)."]


def test_version_1_knowledge_and_version_2_skill_are_read_with_warnings(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    knowledge = put(tmp_path, "knowledge/space/mars/qna.yaml", "knowledge_v1.yaml")
    assert [str(i) for i in lint_file(knowledge, tmp_path)] == [
        "WARN: knowledge/space/mars/qna.yaml:1:1 This file uses taxonomy format version 1 (no 'version' key), which "
        "is deprecated: it is still read, but please update it to version 3: add 'version: 3', 'document_outline', "
        "group the questions under seed examples that each have a 'context' and at least 3 "
        "'questions_and_answers', and remove 'task_description'. See docs/taxonomy.md."]
    leaf = read_leaf(knowledge, tmp_path)
    assert (leaf.version, leaf.kind, len(leaf.seed_examples)) == (1, "knowledge", 2)
    skill = put(tmp_path, "compositional_skills/grammar/passive/qna.yaml", "skill_v2.yaml")
    assert [str(i) for i in lint_file(skill, tmp_path)] == [
        "WARN: compositional_skills/grammar/passive/qna.yaml:1:1 This file uses taxonomy format version 2 "
        "('version: 2'), which is deprecated: it is still read, but please update it to version 3: add "
        "'version: 3' and make sure there are at least 5 different seed examples. See docs/taxonomy.md."]
    leaf = read_leaf(skill, tmp_path)
    assert (leaf.version, leaf.kind, len(leaf.seed_examples)) == (2, "freeform_skill", 5)


def test_read_leaf_raises_with_every_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = put(tmp_path, "compositional_skills/writing/haiku/qna.yaml", "freeform_v3.yaml")
    path.write_text(path.read_text().replace("created_by: bob\n", "").replace("version: 3", "version: 3  "))
    with pytest.raises(TaxonomyError) as err:
        read_leaf(path, tmp_path)
    assert str(err.value) == (
        "The taxonomy has 2 errors in 1 file; fix them and run `ilab taxonomy diff` again:\n"
        "ERROR: compositional_skills/writing/haiku/qna.yaml:1:1 [.] 'created_by' is missing in the top of the "
        "file. Add 'created_by: <your GitHub user name or your name>'.\n"
        "ERROR: compositional_skills/writing/haiku/qna.yaml:1:11 Line ends with spaces; delete the spaces after "
        "the last character.")


def test_warnings_do_not_stop_reading(tmp_path: Path) -> None:
    path = put(tmp_path, "compositional_skills/writing/haiku/qna.yaml", "freeform_v3.yaml")
    path.write_text(path.read_text().replace("created_by: bob", "created_by: " + " ".join(["b"] * 70)))
    assert [i.severity for i in lint_file(path, tmp_path)] == ["warning"]
    assert read_leaf(path, tmp_path).created_by.startswith("b b")


def test_alias_bomb_and_recursive_alias_are_errors(tmp_path: Path) -> None:
    path = tmp_path / "compositional_skills" / "x" / "y" / "qna.yaml"
    path.parent.mkdir(parents=True)
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]"
              for i in range(1, 9)]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(TaxonomyError, match="too many values"):
        read_leaf(path, tmp_path)
    path.write_text("a: &x [1, *x]\n")
    with pytest.raises(TaxonomyError, match="refers to the value that contains it"):
        read_leaf(path, tmp_path)


YAML_ATOMS = st.sampled_from([
    "version: 3\n", "created_by: x\n", "task_description: t\n", "seed_examples:\n", "  - question: q\n",
    "    answer: a\n", "    context: c\n", "- ", ": ", "&a ", "*a ", "!!binary ", "!tag ", "<<: ", "[", "]", "{",
    "}", "\"", "'", "|\n", ">-\n", "  ", "\t", "\n", "---\n", "...\n", "? ", "#", "%YAML 1.1\n", "\ufeff",
    "version: 3.5\n", "version: true\n", "~", "2024-01-01", "0x1F", ".nan", "\x00", "\u2028", "é",
])


def _check(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = root / "compositional_skills" / "fuzz" / "case" / "qna.yaml"
        path.parent.mkdir(parents=True)
        path.write_bytes(content)
        try:
            read_leaf(path, root)
        except TaxonomyError:
            pass
        issues = lint_file(path, root)
        assert all(str(issue).startswith(("ERROR: ", "WARN: ")) for issue in issues)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(YAML_ATOMS, max_size=30).map("".join))
def test_reader_only_raises_taxonomy_error_on_yaml_like_text(text: str) -> None:
    _check(text.encode("utf-8"))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass"))))
def test_reader_only_raises_taxonomy_error_on_arbitrary_bytes(content: bytes) -> None:
    _check(content)


def test_very_deep_nesting_is_an_error_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "compositional_skills" / "x" / "y" / "qna.yaml"
    path.parent.mkdir(parents=True)
    path.write_text("[" * 100_000 + "\n")  # libyaml's C composer would overflow the C stack on this
    with pytest.raises(TaxonomyError, match="nested too deeply"):
        read_leaf(path, tmp_path)


def test_cli_module_and_package_import_no_yaml_or_jsonschema() -> None:
    import subprocess
    import sys

    code = ("import sys, labrador.cli.taxonomy, labrador.taxonomy, labrador.taxonomy.documents; "
            "print(sorted(m for m in ('yaml', 'jsonschema', 'pydantic', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
