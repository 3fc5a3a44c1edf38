"""`ilab taxonomy diff` and changed_files/load_leaves on real git repositories made in tmp dirs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from labrador.errors import TaxonomyError
from labrador.taxonomy import load_leaves
from labrador.taxonomy.diff import changed_files

FIXTURES = Path(__file__).parent / "fixtures" / "taxonomy"
SAMPLE = Path(__file__).resolve().parents[1] / "src" / "labrador" / "data" / "sample_taxonomy"
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}).stdout.strip()


def put(root: Path, rel: str, fixture: str = "freeform_v3.yaml") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text((FIXTURES / fixture).read_text())
    return path


def commit_all(root: Path, message: str) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """main has skills a and b; the checked-out branch 'feature' starts there."""
    root = tmp_path / "taxonomy"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    put(root, "compositional_skills/a/qna.yaml")
    put(root, "compositional_skills/b/qna.yaml")
    (root / "README.md").write_text("taxonomy\n")
    commit_all(root, "base")
    git(root, "checkout", "-q", "-b", "feature")
    return root


def rel(root: Path, paths: list[Path]) -> list[str]:
    return [p.relative_to(root).as_posix() for p in paths]


def test_changed_untracked_and_removed_files(repo: Path) -> None:
    path = repo / "compositional_skills/a/qna.yaml"
    path.write_text(path.read_text().replace("bob", "bobby"))
    commit_all(repo, "edit a")
    put(repo, "compositional_skills/c/qna.yaml")
    commit_all(repo, "add c")
    put(repo, "compositional_skills/d/qna.yaml")  # untracked
    (repo / "compositional_skills/b/qna.yaml").unlink()
    (repo / "README.md").write_text("changed, but not a taxonomy file\n")
    result = changed_files(repo, "main")
    assert rel(repo, result.changed) == ["compositional_skills/a/qna.yaml", "compositional_skills/c/qna.yaml",
                                         "compositional_skills/d/qna.yaml"]
    assert result.removed == ["compositional_skills/b/qna.yaml"]
    assert (result.base_used, result.notice) == ("main", None)


def test_files_changed_on_the_base_after_branching_are_not_listed(repo: Path) -> None:
    git(repo, "checkout", "-q", "main")
    put(repo, "compositional_skills/on_main/qna.yaml")
    commit_all(repo, "main moves on")
    git(repo, "checkout", "-q", "feature")
    put(repo, "compositional_skills/mine/qna.yaml")
    result = changed_files(repo, "main")
    assert rel(repo, result.changed) == ["compositional_skills/mine/qna.yaml"]
    assert result.removed == []


def test_default_base_falls_back_to_main_then_head(repo: Path) -> None:
    result = changed_files(repo)
    assert result.base_used == "main"
    assert result.notice == f"The base 'origin/main' does not exist in {repo}; comparing with 'main' instead."
    git(repo, "branch", "-q", "-m", "main", "trunk")
    put(repo, "compositional_skills/new/qna.yaml")
    result = changed_files(repo)
    assert result.base_used == "HEAD"
    assert result.notice == (f"The base 'origin/main' does not exist in {repo}; comparing with 'HEAD' instead (the "
                             "last commit, so only uncommitted changes are listed).")
    assert rel(repo, result.changed) == ["compositional_skills/new/qna.yaml"]


def test_origin_main_is_used_when_it_exists(repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "fetch", "-q", "origin")
    put(repo, "compositional_skills/e/qna.yaml")
    result = changed_files(repo)
    assert (result.base_used, result.notice) == ("origin/main", None)
    assert rel(repo, result.changed) == ["compositional_skills/e/qna.yaml"]


def test_unknown_or_unsafe_base_is_refused(repo: Path) -> None:
    with pytest.raises(TaxonomyError) as err:
        changed_files(repo, "no-such-branch")
    assert str(err.value) == (f"The taxonomy base 'no-such-branch' is not a branch, tag or commit in {repo}; check "
                              "the name with `git branch -a`, or use --taxonomy-base empty to validate every file.")
    with pytest.raises(TaxonomyError) as err:
        changed_files(repo, "--output=/tmp/pwned")
    assert str(err.value) == ("The taxonomy base '--output=/tmp/pwned' is not a valid git ref; give a branch, tag or "
                              "commit such as origin/main, or 'empty' to validate every file.")


def test_not_a_git_repository(tmp_path: Path) -> None:
    put(tmp_path / "plain", "compositional_skills/a/qna.yaml")
    with pytest.raises(TaxonomyError, match="is not a git repository, so there is no base to compare with"):
        changed_files(tmp_path / "plain", "main")
    assert rel(tmp_path / "plain", changed_files(tmp_path / "plain", "empty").changed) == [
        "compositional_skills/a/qna.yaml"]


def test_repository_without_commits(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    put(tmp_path, "compositional_skills/a/qna.yaml")
    result = changed_files(tmp_path)
    assert result.notice == f"The repository {tmp_path} has no commits yet; every taxonomy file counts as new."
    assert rel(tmp_path, result.changed) == ["compositional_skills/a/qna.yaml"]


def test_empty_base_lists_every_file_including_misnamed_ones(repo: Path) -> None:
    put(repo, "knowledge/space/moon/QnA.yml", "knowledge_v3.yaml")
    result = changed_files(repo, "empty")
    assert rel(repo, result.changed) == ["compositional_skills/a/qna.yaml", "compositional_skills/b/qna.yaml",
                                         "knowledge/space/moon/QnA.yml"]


def test_load_leaves_returns_valid_leaves_or_every_error(repo: Path) -> None:
    leaves = load_leaves(repo)
    assert [leaf.name for leaf in leaves] == ["compositional_skills->a", "compositional_skills->b"]
    put(repo, "compositional_skills/c/qna.yaml").write_text("version: 3\n")
    with pytest.raises(TaxonomyError) as err:
        load_leaves(repo, "main")
    assert str(err.value).splitlines()[1:] == [
        f"ERROR: {repo}/compositional_skills/c/qna.yaml:1:1 [.] '{key}' is missing in the top of the file. Add {hint}."
        for key, hint in (("created_by", "'created_by: <your GitHub user name or your name>'"),
                          ("task_description", "'task_description: <what the model should learn to do>'"),
                          ("seed_examples", "'seed_examples:' followed by the examples, each starting with '- '"))]


def test_cli_valid_then_invalid_with_alias(repo: Path, run_ilab) -> None:
    ok = run_ilab("taxonomy", "diff", "--taxonomy-path", str(repo), "--taxonomy-base", "empty")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines() == ["Taxonomy files changed in the whole taxonomy:",
                                      "  compositional_skills/a/qna.yaml", "  compositional_skills/b/qna.yaml",
                                      f"Taxonomy in {repo} is valid :)"]
    bad = repo / "compositional_skills/b/qna.yaml"
    bad.write_text(bad.read_text().replace("created_by: bob", "created_by: bob "))
    (repo / "compositional_skills/a/qna.yaml").unlink()
    out = run_ilab("diff", "--taxonomy-path", str(repo))  # the alias; base from config: origin/main -> main
    assert out.returncode == 1
    assert out.stderr.strip() == f"Note: The base 'origin/main' does not exist in {repo}; comparing with 'main' instead."
    assert out.stdout.splitlines() == [
        "Taxonomy files changed since main:", "  compositional_skills/b/qna.yaml", "Removed (not validated):",
        "  compositional_skills/a/qna.yaml",
        f"ERROR: {bad}:2:16 Line ends with spaces; delete the spaces after the last character.",
        f"Taxonomy in {repo} is not valid: 1 problem in 1 file. Fix the lines listed above and run `ilab taxonomy "
        "diff` again."]


def test_cli_quiet_json_strict_and_yaml_rules(repo: Path) -> None:
    """Option combinations, run in-process through click (the subprocess tests above cover the real binary)."""
    from click.testing import CliRunner

    from labrador.cli.taxonomy import taxonomy

    bad = repo / "compositional_skills/b/qna.yaml"
    bad.write_text(bad.read_text().replace("created_by: bob", "created_by: bob "))
    (repo / "compositional_skills/a/qna.yaml").unlink()
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(taxonomy, ["diff", "--taxonomy-path", str(repo), "--taxonomy-base", "main", *args])

    quiet = run("--quiet")
    assert (quiet.exit_code, quiet.output) == (1, "")
    as_json = run("--json")
    report = json.loads(as_json.output)
    assert as_json.exit_code == 1
    assert (report["valid"], report["errors"], report["base_used"], report["removed"]) == (
        False, 1, "main", ["compositional_skills/a/qna.yaml"])
    assert report["files"][0]["issues"][0] == {
        "path": str(bad), "line": 2, "column": 16, "severity": "error", "yaml_path": None,
        "message": "Line ends with spaces; delete the spaces after the last character."}
    rules = repo.parent / "rules.yaml"
    rules.write_text("rules:\n  trailing-spaces: {level: warning}\n")
    assert run("--yaml-rules", str(rules), "-q").exit_code == 0
    assert run("--yaml-rules", str(rules), "-q", "--strict").exit_code == 1
    relaxed = run("--yaml-rules", str(rules))
    assert relaxed.output.splitlines()[-1] == f"Taxonomy in {repo} is valid :) (1 warning)"


def test_cli_taxonomy_path_from_config_and_fatal_error(tmp_path: Path, isolated_home: Path, run_ilab) -> None:
    config = isolated_home / "config" / "labrador" / "config.yaml"
    config.parent.mkdir(parents=True)
    missing = tmp_path / "nowhere"
    config.write_text(f"generate:\n  taxonomy_path: {missing}\n  taxonomy_base: empty\n")
    out = run_ilab("taxonomy", "diff")
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert out.stderr.strip() == (f"Error: The taxonomy folder {missing} does not exist; run `ilab config init` to "
                                  "create one, or pass --taxonomy-path with the folder of your taxonomy.")


def test_bundled_sample_taxonomy_validates_clean(tmp_path: Path, run_ilab) -> None:
    root = tmp_path / "sample"
    shutil.copytree(SAMPLE, root)
    git(root, "init", "-q", "-b", "main")
    commit_all(root, "sample")
    out = run_ilab("taxonomy", "diff", "--taxonomy-path", str(root), "--taxonomy-base", "empty", "--check-documents")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines()[-1] == f"Taxonomy in {root} is valid :)"
    kinds = sorted(leaf.kind for leaf in load_leaves(root))
    assert kinds == ["freeform_skill", "grounded_skill", "knowledge"]


def test_worker_processes_give_the_same_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from labrador.taxonomy.lint import _workers, analyze_many
    from labrador.taxonomy.yamlrules import load_rules

    paths = [put(tmp_path, f"compositional_skills/s{i}/qna.yaml") for i in range(5)]
    paths[2].write_text("version: 3\n")
    serial = analyze_many(paths, tmp_path, load_rules(None))
    monkeypatch.setenv("LABRADOR_TAXONOMY_WORKERS", "2")
    if "torch" not in sys.modules and "llama_cpp" not in sys.modules:
        assert _workers(len(paths)) == 2
    assert analyze_many(paths, tmp_path, load_rules(None)) == serial
    assert [bool(a.errors) for a in serial] == [False, False, True, False, False]
