"""The one way labrador reads a file that a user hands it: taxonomy files and their documents, config.yaml,
presets, pipelines, prompts, question sets, training and evaluation data.

Whatever the file turns out to be, reading it is bounded and ends in the text or a clear error:

- only a regular file is read. It is opened non-blocking and checked with fstat, so a FIFO, /dev/zero, a
  socket or a folder is refused at once instead of blocking or streaming without end;
- with a ``root`` (the taxonomy, a documents checkout), the path is resolved and must stay inside it: a
  symbolic link that leads out of it is refused, naming the link and its target, and never followed (the
  resolved file is opened with O_NOFOLLOW, so a link swapped in meanwhile is refused too);
- at most ``kind.cap`` bytes are read: a larger file is refused, even one that grows while it is read;
- text is UTF-8 (a leading BOM is allowed); a bad byte is reported by line, column and byte offset.

Every refusal is a ``UserFileError`` (a LabradorError, exit 1) whose message names the file and says what to
do. The caps, per kind of file, are listed in docs/security.md.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from labrador.errors import UserFileError

MiB = 1 << 20
GiB = 1 << 30
BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Kind:
    """What a file is for: how messages call it, the most bytes read, and how to get under that."""

    noun: str
    cap: int
    shrink: str


TAXONOMY_FILE = Kind("a taxonomy file", 4 * MiB, "move long passages into the leaf's documents, or split the leaf")
YAML_FILE = Kind("a YAML file", 8 * MiB, "split it, or move long texts into separate files")
DOCUMENT = Kind("a knowledge document", 64 * MiB, "split it into several documents")
PDF_DOCUMENT = Kind("a PDF knowledge document", 256 * MiB, "split it, or convert it to Markdown")
DATA_FILE = Kind("a data file", 4 * GiB, "split it into several files")
TEXT_FILE = Kind("a text file", 8 * MiB, "shorten it")  # a system prompt, a chat template

_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_FILE_TYPES = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def read_text(path: str | Path, kind: Kind, root: str | Path | None = None, tree: str = "the taxonomy") -> str:
    """The UTF-8 text of ``path`` (see ``read_bytes``); a BOM at the start is dropped."""
    return decode(read_bytes(path, kind, root, tree), path)


def read_bytes(path: str | Path, kind: Kind, root: str | Path | None = None, tree: str = "the taxonomy") -> bytes:
    """The bytes of the regular file ``path``, at most ``kind.cap`` of them; with ``root``, the file must
    resolve inside it (``tree`` names the root in messages). UserFileError otherwise."""
    path = Path(path)
    handle, size = _open_regular(path, root, tree)
    with handle:
        if size > kind.cap:
            raise _too_large(path, kind, size)
        try:
            data = _read_capped(handle, size, kind.cap)
        except OSError as err:
            raise UserFileError(path, f"cannot be read ({err.strerror or err}); check the disk and that you may "
                                "read it.") from None
    if len(data) > kind.cap:
        raise _too_large(path, kind, None)
    return data


def open_binary(path: str | Path, root: str | Path | None = None, tree: str = "the taxonomy") -> BinaryIO:
    """``path`` open for reading bytes, checked as ``read_bytes`` checks it but without a size cap: for readers
    that stream a file (hashes, CSV, line counts). The caller closes it."""
    return _open_regular(Path(path), root, tree)[0]


def _open_regular(path: Path, root: str | Path | None, tree: str) -> tuple[BinaryIO, int]:
    """The open file and its size; never blocks (O_NONBLOCK) and never reads a FIFO, device or folder."""
    target, flags = (inside(path, root, tree), _OPEN_FLAGS | _NOFOLLOW) if root is not None else (path, _OPEN_FLAGS)
    try:
        fd = os.open(target, flags)
    except OSError as err:
        if root is not None and _NOFOLLOW and os.path.islink(target):  # replaced by a link after the check
            raise UserFileError(path, "became a symbolic link while it was read; replace the link with a copy "
                                "of the file.") from None
        raise UserFileError(path, f"cannot be read ({err.strerror or err}); check that it exists and that you "
                            "may read it.") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UserFileError(path, f"is not a regular file but {_file_type(info.st_mode)}; labrador reads only "
                                "ordinary files, so replace it with the file itself.")
        return os.fdopen(fd, "rb"), info.st_size
    except BaseException:
        os.close(fd)
        raise


def decode(data: bytes, path: str | Path) -> str:
    """``data`` as UTF-8 text without its BOM; UserFileError giving the line, column and byte offset of the
    first byte that is not UTF-8."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        offset = err.start + (len(BOM) if data.startswith(BOM) else 0)  # the codec counts after the BOM
        before = data[:offset]
        line, column = before.count(b"\n") + 1, offset - (before.rfind(b"\n") + 1) + 1
        raise UserFileError(path, f"is not UTF-8 text: the byte 0x{data[offset]:02X} at byte offset {offset} "
                            f"(line {line}, column {column}) is not valid UTF-8; save the file with UTF-8 "
                            "encoding.", line, column) from None


def inside(path: str | Path, root: str | Path, tree: str = "the taxonomy") -> Path:
    """The real path of ``path``, which must lie inside ``root``; UserFileError naming the symbolic link that
    leads out of it (and the link's target) otherwise."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if within(real, real_root):
        return Path(real)
    link = _escaping_link(Path(path), Path(root), real_root)
    if link is None:
        raise UserFileError(path, f"is not inside {tree} ({root}); move it there.")
    target = os.path.realpath(link)
    subject = "is a symbolic link" if link == Path(os.path.abspath(path)) else f"lies under {link}, a symbolic link"
    raise UserFileError(path, f"{subject} to {target}, outside {tree} ({real_root}); labrador does not follow "
                        f"links out of {tree}, so replace the link with a copy of what it points to.")


def line_and_column(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of ``offset`` in ``text``."""
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1


def size_words(size: int) -> str:
    """``4 MiB``, ``1.5 GiB``, ``812 bytes``: sizes in messages and docs."""
    for unit, scale in (("GiB", GiB), ("MiB", MiB), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} bytes"


def within(real: str, real_root: str) -> bool:
    """Whether the real path ``real`` is ``real_root`` or lies under it."""
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def _escaping_link(path: Path, root: Path, real_root: str) -> Path | None:
    """The first symbolic link on the way from ``root`` down to ``path`` that resolves outside the root."""
    lexical, base = Path(os.path.abspath(path)), Path(os.path.abspath(root))
    for start in (base, Path(real_root)):
        if lexical.is_relative_to(start):
            current = start
            for part in lexical.relative_to(start).parts:
                current = current / part
                if os.path.islink(current) and not within(os.path.realpath(current), real_root):
                    return current
    return None


def _read_capped(handle: BinaryIO, size: int, cap: int) -> bytes:
    """Up to cap + 1 bytes: the size fstat gave in one read (a buffer of the cap itself would be allocated in
    full), then whatever the file grew by, so that a file growing past the cap is still refused."""
    parts = [handle.read(min(size, cap) + 1)]
    total = len(parts[0])
    while total <= cap and (more := handle.read(min(MiB, cap + 1 - total))):
        parts.append(more)
        total += len(more)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _file_type(mode: int) -> str:
    return next((words for test, words in _FILE_TYPES if test(mode)), "a special file")


def _too_large(path: Path, kind: Kind, size: int | None) -> UserFileError:
    have = f"is {size_words(size)}, over" if size is not None else "grew past"
    return UserFileError(path, f"{have} the {size_words(kind.cap)} that labrador reads of {kind.noun}; "
                         f"{kind.shrink}.")
