"""Fast GGUF header reader: metadata and tensor table, with checks that catch truncated or corrupt files.

Why not `gguf.GGUFReader`: it builds a numpy memmap for every array element of the metadata, which takes
about 7 s for SmolLM2's 49k-token vocabulary on this machine; `ilab model list` and model resolution must be
instant. This reader walks the same format (spec: ggml/docs/gguf.md) with `struct`, skips large arrays, and
uses the `gguf` package's tables for the tensor type sizes. Tests compare its output with GGUFReader's.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labrador.errors import ModelError

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
_KEEP_ARRAY_ITEMS = 64  # arrays longer than this (vocabularies, merges) are skipped, only their length kept

# value type id -> struct format (little-endian); 8 = string, 9 = array
_SCALARS: dict[int, str] = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
                            10: "<Q", 11: "<q", 12: "<d"}


class _Truncated(Exception):
    pass


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    type_name: str
    n_elements: int
    n_bytes: int
    offset: int  # relative to the start of the data section


@dataclass
class GGUFMeta:
    path: Path
    version: int
    metadata: dict[str, Any] = field(default_factory=dict)
    array_lengths: dict[str, int] = field(default_factory=dict)  # long arrays that were skipped
    tensors: list[TensorInfo] = field(default_factory=list)
    data_offset: int = 0

    @property
    def architecture(self) -> str | None:
        return self.metadata.get("general.architecture")

    @property
    def context_length(self) -> int | None:
        arch = self.architecture
        value = self.metadata.get(f"{arch}.context_length") if arch else None
        return int(value) if value is not None else None

    @property
    def parameter_count(self) -> int:
        return sum(t.n_elements for t in self.tensors)


class _Cursor:
    def __init__(self, buf: mmap.mmap | bytes) -> None:
        self.buf = buf
        self.pos = 0

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if n < 0 or end > len(self.buf):
            raise _Truncated
        chunk = self.buf[self.pos:end]
        self.pos = end
        return chunk

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        return self.take(self.unpack("<Q")).decode("utf-8", errors="replace")

    def skip_string(self) -> None:
        n = self.unpack("<Q")
        if self.pos + n > len(self.buf):
            raise _Truncated
        self.pos += n

    def value(self, vtype: int) -> Any:
        if vtype in _SCALARS:
            return self.unpack(_SCALARS[vtype])
        if vtype == 8:
            return self.string()
        raise ValueError(f"unknown metadata value type {vtype}")


def _read_array(cur: _Cursor) -> tuple[list[Any] | None, int]:
    item_type, count = cur.unpack("<I"), cur.unpack("<Q")
    if count > len(cur.buf):
        raise ValueError(f"array length {count} is larger than the file")
    if count <= _KEEP_ARRAY_ITEMS:
        if item_type == 9:
            return [_read_array(cur)[0] for _ in range(count)], count
        return [cur.value(item_type) for _ in range(count)], count
    if item_type in _SCALARS:
        cur.take(count * struct.calcsize(_SCALARS[item_type]))
    elif item_type == 8:
        for _ in range(count):
            cur.skip_string()
    elif item_type == 9:
        for _ in range(count):
            _read_array(cur)
    else:
        raise ValueError(f"unknown array item type {item_type}")
    return None, count


def _tensor_bytes(type_id: int, n_elements: int) -> tuple[str, int]:
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    try:
        qtype = GGMLQuantizationType(type_id)
    except ValueError:
        raise ValueError(f"unknown tensor type {type_id}") from None
    block, type_size = GGML_QUANT_SIZES[qtype]
    return qtype.name, n_elements // block * type_size


def read_gguf(path: Path | str) -> GGUFMeta:
    """Parse a GGUF file's header; ModelError naming the file when it is not GGUF, truncated or corrupt."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            if fh.read(4) != GGUF_MAGIC:
                raise ModelError(f"{path} is not a GGUF model file (it does not start with the GGUF magic bytes); "
                                 "pass a .gguf file or a Hugging Face model directory.")
            fh.seek(0)
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                meta = _parse(path, _Cursor(buf))
    except OSError as err:
        raise ModelError(f"{path}: cannot read the model file ({err.strerror or err}).") from None
    except _Truncated:
        raise ModelError(f"{path} is a truncated GGUF file (the header ends early); the download or copy was "
                         "incomplete: download or convert it again.") from None
    except (ValueError, UnicodeDecodeError, struct.error) as err:
        raise ModelError(f"{path} is a corrupt GGUF file ({err}); download or convert it again.") from None
    end = max((meta.data_offset + t.offset + t.n_bytes for t in meta.tensors), default=meta.data_offset)
    if end > size:
        raise ModelError(f"{path} is a truncated GGUF file: its tensors need {end} bytes but the file has {size}; "
                         "the download or copy was incomplete: download or convert it again.")
    return meta


def _parse(path: Path, cur: _Cursor) -> GGUFMeta:
    cur.take(4)
    version = cur.unpack("<I")
    if version not in (2, 3):
        raise ValueError(f"unsupported GGUF version {version}; only versions 2 and 3 are read")
    n_tensors, n_kv = cur.unpack("<Q"), cur.unpack("<Q")
    if n_tensors > len(cur.buf) or n_kv > len(cur.buf):
        raise ValueError("impossible tensor or key count in the header")
    meta = GGUFMeta(path=path, version=version)
    for _ in range(n_kv):
        key, vtype = cur.string(), cur.unpack("<I")
        if vtype == 9:
            items, count = _read_array(cur)
            if items is None:
                meta.array_lengths[key] = count
            else:
                meta.metadata[key] = items
        else:
            meta.metadata[key] = cur.value(vtype)
    for _ in range(n_tensors):
        name, n_dims = cur.string(), cur.unpack("<I")
        if n_dims > 8:
            raise ValueError(f"tensor {name} has {n_dims} dimensions")
        shape = tuple(cur.unpack("<Q") for _ in range(n_dims))
        type_id, offset = cur.unpack("<I"), cur.unpack("<Q")
        n_elements = 1
        for dim in shape:
            n_elements *= dim
        type_name, n_bytes = _tensor_bytes(type_id, n_elements)
        meta.tensors.append(TensorInfo(name, shape, type_name, n_elements, n_bytes, offset))
    alignment = int(meta.metadata.get("general.alignment", DEFAULT_ALIGNMENT)) or DEFAULT_ALIGNMENT
    meta.data_offset = (cur.pos + alignment - 1) // alignment * alignment
    return meta
