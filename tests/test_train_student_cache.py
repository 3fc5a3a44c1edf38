"""The dequantized copy of a GGUF student is keyed by the file's bytes, so new installs reuse it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from labrador.train import student
from test_train_support import SUPPORT_DIR, smollm_hf_dir


def test_same_bytes_at_another_path_or_mtime_share_one_key_and_other_bytes_do_not(tmp_path: Path) -> None:
    memo = tmp_path / "keys"
    first = tmp_path / "a" / "model.gguf"
    first.parent.mkdir()
    first.write_bytes(b"GGUF" + bytes(range(256)) * 64)
    moved = tmp_path / "b" / "model.gguf"
    moved.parent.mkdir()
    shutil.copyfile(first, moved)
    os.utime(moved, ns=(1, 1))  # a fresh install: same bytes, another path and mtime
    other = tmp_path / "c" / "model.gguf"
    other.parent.mkdir()
    other.write_bytes(b"GGUF" + bytes(range(255, -1, -1)) * 64)

    key = student._content_key(first, memo)
    assert student._content_key(moved, memo) == key
    assert student._content_key(other, memo) != key
    assert len(list(memo.iterdir())) == 3  # one remembered digest per (path, size, mtime)

    # The memo is what a second call reads: the bytes are not hashed again while path, size and mtime hold.
    remembered = next(p for p in memo.iterdir() if p.read_text(encoding="utf-8") == key)
    remembered.write_text("0123456789abcdef", encoding="utf-8")
    assert {student._content_key(first, memo), student._content_key(moved, memo)} == {key, "0123456789abcdef"}


def test_a_copy_of_the_embedded_gguf_reuses_the_dequantized_model(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    original = smollm_hf_dir()  # converted once per machine into SUPPORT_DIR's cache
    embedded = student.resolve_student(None)
    copy = tmp_path / "elsewhere" / embedded.path.name
    copy.parent.mkdir()
    shutil.copyfile(embedded.path, copy)
    monkeypatch.setenv("XDG_CACHE_HOME", str(SUPPORT_DIR / "cache"))
    before = sorted(original.parent.iterdir())

    reused = student.hf_dir_for(student.Student(copy, "gguf", "copy"))

    assert reused == original
    assert sorted(original.parent.iterdir()) == before  # no second 0.5 GB copy
