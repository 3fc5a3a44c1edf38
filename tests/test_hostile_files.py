"""Hostile files through the real CLI: each is a clear error with exit 1, in bounded time and memory.

One test per file row of issue 17's table (a taxonomy pull request, a config file, training data), plus the
neighbours of each row (a FIFO config, a document that is a FIFO, deeply nested JSON). Every run has a
20 s timeout and an address-space limit, so a regression shows as a failure, not as a hung or swapped machine.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "taxonomy"
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
MEMORY = 2 << 30  # bytes of address space: labrador needs a few hundred MiB; /dev/zero read in full needs all
TIMEOUT = 20
LINK_OUT = ("labrador does not follow links out of the taxonomy, so replace the link with a copy of what it "
            "points to.")


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def ilab(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """`ilab ARGS` in a fresh process under the time and memory bounds; (result, seconds)."""
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "labrador.cli.main", *args], capture_output=True, text=True,
                          timeout=TIMEOUT, check=False, preexec_fn=_limit_memory)
    elapsed = time.monotonic() - start
    assert "Traceback" not in done.stderr and "Internal error" not in done.stderr, done.stderr
    return done, elapsed


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, env={**os.environ, **GIT_ENV})


@pytest.fixture
def taxonomy(tmp_path: Path) -> Path:
    """A git taxonomy whose main branch holds one valid skill; the branch 'pr' is checked out."""
    root = tmp_path / "taxonomy"
    leaf = root / "compositional_skills" / "good" / "qna.yaml"
    leaf.parent.mkdir(parents=True)
    leaf.write_text((FIXTURES / "freeform_v3.yaml").read_text())
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    git(root, "checkout", "-q", "-b", "pr")
    return root


def commit(root: Path) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "pull request")


def diff_errors(root: Path, base: str = "main", *extra: str) -> list[str]:
    done, elapsed = ilab("taxonomy", "diff", "--taxonomy-path", str(root), "--taxonomy-base", base, *extra)
    assert done.returncode == 1, done.stdout + done.stderr
    assert elapsed < TIMEOUT
    return [line for line in done.stdout.splitlines() if line.startswith(("ERROR: ", "WARN: "))]


def test_qna_yaml_committed_as_a_link_to_dev_zero_is_refused(taxonomy: Path) -> None:
    leaf = taxonomy / "compositional_skills" / "zero" / "qna.yaml"
    leaf.parent.mkdir()
    leaf.symlink_to("/dev/zero")
    commit(taxonomy)
    assert diff_errors(taxonomy) == [
        f"ERROR: {leaf}:1:1 The file is a symbolic link to /dev/zero, outside the taxonomy "
        f"({os.path.realpath(taxonomy)}); {LINK_OUT}"]


def test_qna_yaml_that_is_a_fifo_is_refused_at_once(taxonomy: Path) -> None:
    leaf = taxonomy / "compositional_skills" / "pipe" / "qna.yaml"
    leaf.parent.mkdir()
    os.mkfifo(leaf)  # git cannot commit a FIFO, so only a walk of the tree (base 'empty') meets one
    assert diff_errors(taxonomy, "empty") == [
        f"ERROR: {leaf}:1:1 The file is not a regular file but a FIFO (named pipe); labrador reads only ordinary "
        "files, so replace it with the file itself."]


def test_qna_yaml_linked_to_a_valid_file_outside_the_repository_is_refused(taxonomy: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "qna.yaml"
    outside.parent.mkdir()
    outside.write_text((FIXTURES / "freeform_v3.yaml").read_text())
    leaf = taxonomy / "compositional_skills" / "borrowed" / "qna.yaml"
    leaf.parent.mkdir()
    leaf.symlink_to(outside)
    commit(taxonomy)
    assert diff_errors(taxonomy) == [
        f"ERROR: {leaf}:1:1 The file is a symbolic link to {os.path.realpath(outside)}, outside the taxonomy "
        f"({os.path.realpath(taxonomy)}); {LINK_OUT}"]


@pytest.mark.parametrize("base", ["main", "empty"])
def test_leaf_folder_linked_outside_the_repository_is_refused(taxonomy: Path, tmp_path: Path, base: str) -> None:
    outside = tmp_path / "elsewhere" / "leaf"
    outside.mkdir(parents=True)
    (outside / "qna.yaml").write_text((FIXTURES / "freeform_v3.yaml").read_text())
    link = taxonomy / "compositional_skills" / "linked"
    link.symlink_to(outside, target_is_directory=True)
    commit(taxonomy)
    assert diff_errors(taxonomy, base) == [
        f"ERROR: {link}:1:1 This folder is a symbolic link to {os.path.realpath(outside)}, outside the taxonomy "
        f"({os.path.realpath(taxonomy)}); {LINK_OUT}"]


def test_knowledge_document_that_is_a_fifo_is_refused(taxonomy: Path) -> None:
    leaf = taxonomy / "knowledge" / "space" / "moon" / "qna.yaml"
    (leaf.parent / "docs").mkdir(parents=True)
    leaf.write_text((FIXTURES / "knowledge_v3.yaml").read_text())
    os.mkfifo(leaf.parent / "docs" / "moon.md")
    assert diff_errors(taxonomy, "main", "--check-documents") == [
        f"ERROR: {leaf}:1:1 The document moon.md (folder 'docs') is not a regular file but a FIFO (named pipe); "
        "labrador reads only ordinary files, so replace it with the file itself."]


def config_show(tmp_path: Path, content: bytes | None = None) -> tuple[str, float]:
    """stderr of `ilab --config FILE config show` (exit 1 asserted) and the seconds it took."""
    path = tmp_path / "config.yaml"
    if content is not None:
        path.write_bytes(content)
    done, elapsed = ilab("--config", str(path), "config", "show")
    assert done.returncode == 1, done.stdout + done.stderr
    return done.stderr.strip(), elapsed


def test_config_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]  # 9 levels of 9 aliases
    message, elapsed = config_show(tmp_path, ("\n".join(lines) + "\n").encode())
    assert message == (f"Error: {tmp_path / 'config.yaml'}: line 1, column 25: The file expands to too many values "
                       "(YAML anchors and aliases repeated many times); write the values out in full instead of "
                       "using aliases.")
    assert elapsed < 10  # the process with its imports; the YAML part takes a fraction of a second


def test_config_that_is_not_utf8_names_the_byte(tmp_path: Path) -> None:
    message, _ = config_show(tmp_path, "chat:\n  model: café\n".encode("latin-1"))
    assert message == (f"Error: {tmp_path / 'config.yaml'} is not UTF-8 text: the byte 0xE9 at byte offset 18 "
                       "(line 2, column 13) is not valid UTF-8; save the file with UTF-8 encoding.")


def test_config_nested_50000_levels_is_refused(tmp_path: Path) -> None:
    message, _ = config_show(tmp_path, b"chat: " + b"[" * 50_000 + b"]" * 50_000 + b"\n")
    # the column is where PyYAML's own depth limit stops (or, on older PyYAML, labrador's at 500 levels)
    assert re.fullmatch(rf"Error: {re.escape(str(tmp_path / 'config.yaml'))}: line 1, column \d+: The file is "
                        r"nested too deeply to read; flatten the lists and keys\.", message), message


def test_config_section_written_twice_names_both_lines(tmp_path: Path) -> None:
    message, _ = config_show(tmp_path, b"serve:\n  port: 8000\nchat:\n  greedy: true\nserve:\n  host: 0.0.0.0\n")
    assert message == (f"Error: {tmp_path / 'config.yaml'}: line 5, column 1: the key 'serve' is written twice "
                       "(first on line 1); YAML would keep only one of them, so merge the two or remove one.")


def test_config_that_is_a_fifo_or_a_device_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "config.yaml")
    message, _ = config_show(tmp_path)
    assert message == (f"Error: {tmp_path / 'config.yaml'} is not a regular file but a FIFO (named pipe); labrador "
                       "reads only ordinary files, so replace it with the file itself.")
    (tmp_path / "config.yaml").unlink()
    (tmp_path / "config.yaml").symlink_to("/dev/zero")
    message, _ = config_show(tmp_path)
    assert message == (f"Error: {tmp_path / 'config.yaml'} is not a regular file but a character device; labrador "
                       "reads only ordinary files, so replace it with the file itself.")


def train_on(tmp_path: Path, content: bytes) -> str:
    data = tmp_path / "train.jsonl"
    data.write_bytes(content)
    done, _ = ilab("model", "train", "--data-path", str(data), "--ckpt-output-dir", str(tmp_path / "ckpt"))
    assert done.returncode == 1, done.stdout + done.stderr
    return done.stderr.strip()


def test_training_data_that_is_not_utf8_names_the_byte(tmp_path: Path) -> None:
    row = '{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Olá"}]}\n'
    message = train_on(tmp_path, row.encode("utf-8") + row.encode("latin-1"))
    assert message == (f"Error: {tmp_path / 'train.jsonl'} is not UTF-8 text: the byte 0xE1 at byte offset 177 "
                       "(line 2, column 86) is not valid UTF-8; save the file with UTF-8 encoding.")


def test_training_data_nested_too_deeply_is_a_data_error(tmp_path: Path) -> None:
    message = train_on(tmp_path, b"[" * 100_000 + b"]" * 100_000 + b"\n")
    assert message == (f"Error: {tmp_path / 'train.jsonl'}:1: the JSON is nested too deeply to read; each line "
                       "must be one JSON object with a 'messages' list.")
