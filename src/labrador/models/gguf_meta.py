"""The one GGUF reader: header (metadata, tensor table) and tensors, with checks for truncated or corrupt files.

Two ways in, one parser:
- `read_gguf(path)`: the header only, long arrays (vocabularies, merges) skipped with just their length kept,
  so `ilab model list`, model resolution and llama.cpp's n_ctx hint take milliseconds.
- `GgufFile(path)`: everything, arrays included, kept open on a memory map; `tensor(name)` dequantizes one
  tensor on demand (the converters).

Why not `gguf.GGUFReader`: it builds a numpy memmap for every array element of the metadata, which takes
about 7 s for SmolLM2's 49k-token vocabulary on this machine. This reader walks the same format (spec:
ggml/docs/gguf.md, versions 2 and 3, little-endian) with `struct`, and uses the `gguf` package's tables for
tensor types and its dequantizers. Tests compare its output with GGUFReader's.
"""

from __future__ import annotations

import math
import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labrador.errors import ModelError

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
_KEEP_ARRAY_ITEMS = 64  # header-only reads skip arrays longer than this, keeping only their length

# value type id -> struct format (little-endian); 8 = string, 9 = array
_SCALARS: dict[int, str] = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
                            10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


class _Truncated(Exception):
    pass


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]  # numpy (row-major) order: ggml's `ne` reversed
    qtype: int  # gguf.GGMLQuantizationType value
    type_name: str
    n_elements: int
    n_bytes: int
    offset: int  # relative to the start of the data section


@dataclass
class GGUFMeta:
    path: Path
    version: int
    metadata: dict[str, Any] = field(default_factory=dict)
    array_lengths: dict[str, int] = field(default_factory=dict)  # long arrays that a header-only read skipped
    tensors: dict[str, TensorInfo] = field(default_factory=dict)
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
        return sum(t.n_elements for t in self.tensors.values())


class _Cursor:
    """Reads values in order from the buffer; `_Truncated` when one runs past its end.

    `full` keeps every array; otherwise long ones are skipped. Strings decode leniently in a header-only read
    (a listing must not refuse a file that llama.cpp loads) and strictly in a full one (a converter must not
    silently alter a token)."""

    def __init__(self, buf: mmap.mmap, full: bool) -> None:
        self.buf = buf
        self.pos = 0
        self.full = full
        self.errors = "strict" if full else "replace"

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
        return self.take(self.unpack("<Q")).decode("utf-8", errors=self.errors)

    def value(self, vtype: int) -> Any:
        if vtype in _SCALARS:
            return self.unpack(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string()
        raise ValueError(f"unknown metadata value type {vtype}")

    def array(self) -> tuple[list[Any] | None, int]:
        """(items, count); items is None for a long array skipped by a header-only read."""
        item_type, count = self.unpack("<I"), self.unpack("<Q")
        if count > len(self.buf):
            raise ValueError(f"array length {count} is larger than the file")
        keep = self.full or count <= _KEEP_ARRAY_ITEMS
        if item_type in _SCALARS:  # numeric arrays in one step
            dtype = np.dtype(_SCALARS[item_type])
            raw = self.take(count * dtype.itemsize)
            return (np.frombuffer(raw, dtype=dtype).tolist() if keep else None), count
        if item_type == _STRING:
            if keep:
                return [self.string() for _ in range(count)], count
            for _ in range(count):
                self.take(self.unpack("<Q"))
            return None, count
        if item_type == _ARRAY:
            items = [self.array()[0] for _ in range(count)]
            return (items if keep else None), count
        raise ValueError(f"unknown array item type {item_type}")


def _tensor(cur: _Cursor) -> TensorInfo:
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    name, n_dims = cur.string(), cur.unpack("<I")
    if n_dims > 8:
        raise ValueError(f"tensor {name} has {n_dims} dimensions")
    ne = [cur.unpack("<Q") for _ in range(n_dims)]
    type_id, offset = cur.unpack("<I"), cur.unpack("<Q")
    try:
        qtype = GGMLQuantizationType(type_id)
    except ValueError:
        raise ValueError(f"unknown tensor type {type_id}") from None
    block, type_size = GGML_QUANT_SIZES[qtype]
    n_elements = math.prod(ne)
    return TensorInfo(name, tuple(reversed(ne)), type_id, qtype.name, n_elements, n_elements // block * type_size,
                      offset)


def _parse(path: Path, cur: _Cursor) -> GGUFMeta:
    if cur.take(4) != GGUF_MAGIC:
        raise ValueError("missing the GGUF magic bytes")
    version = cur.unpack("<I")
    if version not in (2, 3):
        raise ValueError(f"unsupported GGUF version {version}; only versions 2 and 3 are read")
    n_tensors, n_kv = cur.unpack("<Q"), cur.unpack("<Q")
    if n_tensors > len(cur.buf) or n_kv > len(cur.buf):
        raise ValueError("impossible tensor or key count in the header")
    meta = GGUFMeta(path=path, version=version)
    for _ in range(n_kv):
        key, vtype = cur.string(), cur.unpack("<I")
        if vtype != _ARRAY:
            meta.metadata[key] = cur.value(vtype)
            continue
        items, count = cur.array()
        if items is None:
            meta.array_lengths[key] = count
        else:
            meta.metadata[key] = items
    for _ in range(n_tensors):
        info = _tensor(cur)
        meta.tensors[info.name] = info
    alignment = int(meta.metadata.get("general.alignment", DEFAULT_ALIGNMENT)) or DEFAULT_ALIGNMENT
    meta.data_offset = (cur.pos + alignment - 1) // alignment * alignment
    return meta


def _read_header(path: Path, buf: mmap.mmap, full: bool) -> GGUFMeta:
    """Parse and check the header; ModelError naming the file when it is truncated or corrupt."""
    try:
        meta = _parse(path, _Cursor(buf, full))
    except _Truncated:
        raise ModelError(f"{path} is a truncated GGUF file (the header ends early); the download or copy was "
                         "incomplete: download or convert it again.") from None
    except (ValueError, UnicodeDecodeError, struct.error, OverflowError, MemoryError) as err:
        raise ModelError(f"{path} is a corrupt GGUF file ({err}); download or convert it again.") from None
    end = max((meta.data_offset + t.offset + t.n_bytes for t in meta.tensors.values()), default=meta.data_offset)
    if end > len(buf):
        raise ModelError(f"{path} is a truncated GGUF file: its tensors need {end} bytes but the file has "
                         f"{len(buf)}; the download or copy was incomplete: download or convert it again.")
    return meta


class GgufFile:
    """An open GGUF file: full metadata and tensor table; `tensor(name)` dequantizes one tensor on demand."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._file = _open(self.path)
        try:
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
            self.header = _read_header(self.path, self._map, full=True)
        except BaseException:
            self.close()
            raise
        self.metadata = self.header.metadata
        self.tensors = self.header.tensors

    def close(self) -> None:
        if hasattr(self, "_map"):
            self._map.close()
        self._file.close()

    def __enter__(self) -> GgufFile:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def raw(self, name: str) -> np.ndarray:
        """The tensor's bytes as stored (quantized blocks included), without copying."""
        info = self.tensors[name]
        return np.frombuffer(self._map, dtype=np.uint8, count=info.n_bytes,
                             offset=self.header.data_offset + info.offset)

    def tensor(self, name: str) -> np.ndarray:
        """The tensor as float32, in numpy (row-major) shape."""
        import gguf

        info = self.tensors[name]
        raw = self.raw(name)
        qtype = gguf.GGMLQuantizationType(info.qtype)
        if qtype == gguf.GGMLQuantizationType.F32:
            return raw.view(np.float32).reshape(info.shape).copy()
        if qtype == gguf.GGMLQuantizationType.F16:
            return raw.view(np.float16).reshape(info.shape).astype(np.float32)
        rows = math.prod(info.shape[:-1])
        return gguf.quants.dequantize(raw.reshape(rows, -1), qtype).reshape(info.shape).astype(np.float32)


def _open(path: Path) -> Any:
    """The file opened for reading, after checking the magic bytes (so an empty or foreign file fails first)."""
    try:
        handle = path.open("rb")
    except OSError as err:
        raise ModelError(f"{path}: cannot read the model file ({err.strerror or err}).") from None
    if handle.read(4) != GGUF_MAGIC:
        handle.close()
        raise ModelError(f"{path} is not a GGUF model file (it does not start with the GGUF magic bytes); "
                         "pass a .gguf file or a Hugging Face model directory.")
    return handle


def read_gguf(path: Path | str) -> GGUFMeta:
    """The header of a GGUF file, long arrays skipped; ModelError naming the file when it is not GGUF,
    truncated or corrupt."""
    path = Path(path)
    with _open(path) as handle:
        try:
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                return _read_header(path, buf, full=False)
        except OSError as err:
            raise ModelError(f"{path}: cannot read the model file ({err.strerror or err}).") from None
