"""labrador.userfiles (the safe reader) and labrador.yamlnodes.load (the YAML behind files.read_yaml)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml

from labrador import userfiles
from labrador.errors import ConfigError, DataError, UserFileError
from labrador.files import iter_objects, read_yaml
from labrador.yamlnodes import load

SMALL = userfiles.Kind("a test file", 10, "shorten it")


def test_regular_file_text_with_and_without_bom(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"\xef\xbb\xbfh\xc3\xa9\n")
    assert userfiles.read_text(path, SMALL) == "hé\n"
    path.write_bytes(b"plain")
    assert userfiles.read_text(path, SMALL) == "plain"


def test_size_cap_is_named(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"0123456789")
    assert userfiles.read_bytes(path, SMALL) == b"0123456789"
    path.write_bytes(b"0123456789!")
    with pytest.raises(UserFileError) as err:
        userfiles.read_bytes(path, SMALL)
    assert str(err.value) == f"{path} is 11 bytes, over the 10 bytes that labrador reads of a test file; shorten it."
    with pytest.raises(UserFileError, match="grew past the 10 bytes"):  # fstat says 0 bytes for /proc files
        userfiles.read_bytes("/proc/self/status", SMALL)


@pytest.mark.parametrize("make, words", [(os.mkfifo, "a FIFO (named pipe)"), (os.mkdir, "a folder"),
                                         (lambda p: p.symlink_to("/dev/zero"), "a character device")])
def test_special_files_are_refused_without_blocking(tmp_path: Path, make, words: str) -> None:
    path = tmp_path / "x"
    make(path)
    start = time.monotonic()
    with pytest.raises(UserFileError) as err:
        userfiles.read_bytes(path, userfiles.DATA_FILE)
    assert time.monotonic() - start < 1
    assert str(err.value) == (f"{path} is not a regular file but {words}; labrador reads only ordinary files, so "
                              "replace it with the file itself.")
    with pytest.raises(UserFileError):
        userfiles.open_binary(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UserFileError) as err:
        userfiles.read_text(tmp_path / "nope.yaml", SMALL)
    assert str(err.value) == (f"{tmp_path / 'nope.yaml'} cannot be read (No such file or directory); check that it "
                              "exists and that you may read it.")


def test_bad_utf8_names_line_column_and_offset(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"\xef\xbb\xbfok\nbad \xff here\n")
    with pytest.raises(UserFileError) as err:
        userfiles.read_text(path, userfiles.Kind("a file", 100, "-"))
    assert (err.value.line, err.value.column) == (2, 5)
    assert err.value.problem == ("is not UTF-8 text: the byte 0xFF at byte offset 10 (line 2, column 5) is not "
                                 "valid UTF-8; save the file with UTF-8 encoding.")


def test_links_inside_the_root_are_followed_and_links_out_are_named(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "real").mkdir(parents=True)
    outside.mkdir()
    (root / "real" / "f.txt").write_text("in")
    (outside / "f.txt").write_text("out")
    (root / "alias.txt").symlink_to(root / "real" / "f.txt")
    (root / "out.txt").symlink_to(outside / "f.txt")
    (root / "dir").symlink_to(outside, target_is_directory=True)
    assert userfiles.read_text(root / "alias.txt", SMALL, root) == "in"
    with pytest.raises(UserFileError) as err:
        userfiles.read_text(root / "out.txt", SMALL, root, "the tree")
    assert err.value.problem == (f"is a symbolic link to {os.path.realpath(outside / 'f.txt')}, outside the tree "
                                 f"({os.path.realpath(root)}); labrador does not follow links out of the tree, so "
                                 "replace the link with a copy of what it points to.")
    with pytest.raises(UserFileError) as err:
        userfiles.read_text(root / "dir" / "f.txt", SMALL, root, "the tree")
    assert err.value.problem.startswith(f"lies under {root / 'dir'}, a symbolic link to {os.path.realpath(outside)}")
    assert userfiles.read_text(outside / "f.txt", SMALL) == "out"  # without a root, links are followed


def test_size_words() -> None:
    assert [userfiles.size_words(n) for n in (812, 4 << 20, 3 << 29)] == ["812 bytes", "4 MiB", "1.5 GiB"]


def test_load_gives_what_safe_load_gives_on_valid_yaml() -> None:
    text = ("a: 1\nb: [x, 2.5, null, true, 2024-01-01]\nc: {d: e}\nbase: &b {x: 1, y: 2}\n"
            "m: {<<: [*b, {y: 3, z: 4}], w: 0}\nn:\n  <<: *b\n  x: 5\n'3': three\n")
    assert load(text, "f") == yaml.safe_load(text)
    assert list(load(text, "f")["m"]) == ["x", "y", "z", "w"]


@pytest.mark.parametrize("text, message", [
    ("a: 1\nb: 2\na: 3\n", "f: line 3, column 1: the key 'a' is written twice (first on line 1); YAML would keep "
                           "only one of them, so merge the two or remove one."),
    ("s:\n  k: 1\n  k: 2\n", "f: line 3, column 3: the key 's.k' is written twice (first on line 2); YAML would "
                             "keep only one of them, so merge the two or remove one."),
    ("? [a]\n: 1\n", "f: line 1, column 3: this key is not plain text (it is a list or a group of keys); write keys "
                     "as single words followed by ':'."),
    ("a: [1\n", "f: not valid YAML (line 2, column 1: expected ',' or ']', but got '<stream end>')."),
    ("a: 1\n--- \nb: 2\n", "f: line 2, column 1: The file holds a second YAML document (starting at this '---'); a "
                           "labrador YAML file is one document, so remove the '---' line and merge or delete what "
                           "follows."),
    ("a: !!python/object:os.system x\n", "f: line 1, column 4: The value uses a YAML tag "
                                         "(tag:yaml.org,2002:python/object:os.system) that labrador YAML files do "
                                         "not allow; remove the tag and write plain text."),
    ("a: &a {<<: *a}\n", "f: line 1, column 4: A YAML merge key ('<<') merges the mapping that contains it, which "
                         "makes an endless value; write the keys out in full."),
])
def test_load_refuses_what_safe_load_would_accept_or_crash_on(text: str, message: str) -> None:
    with pytest.raises(DataError) as err:
        load(text, "f")
    assert str(err.value) == message


@pytest.mark.parametrize("merge", [False, True])
def test_alias_and_merge_bombs_stop_quickly(merge: bool) -> None:
    if merge:
        lines = ["a0: &a0 {k0: 1, k1: 2, k2: 3}"]
        lines += [f"a{i}: &a{i} {{<<: [{', '.join([f'*a{i - 1}'] * 9)}]}}" for i in range(1, 10)]
    else:
        lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
        lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    start = time.monotonic()
    with pytest.raises(DataError, match="expands to too many values"):
        load("\n".join(lines), "f")
    assert time.monotonic() - start < 1


def test_read_yaml_and_iter_objects_go_through_the_reader(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    for read in (read_yaml, lambda p: list(iter_objects(p))):
        with pytest.raises(UserFileError, match="is not a regular file but a FIFO"):
            read(tmp_path / "pipe")
    (tmp_path / "c.yaml").write_text("serve:\n  port: 1\nserve: {}\n")
    with pytest.raises(ConfigError, match="the key 'serve' is written twice"):
        read_yaml(tmp_path / "c.yaml", ConfigError)
