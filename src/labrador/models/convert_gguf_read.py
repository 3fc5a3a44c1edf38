"""A small GGUF reader: metadata and tensor views straight from a memory map.

gguf.GGUFReader builds a numpy view per array element (about 100,000 for a 49k-token vocabulary), which costs
several CPU seconds before the first tensor is touched; here metadata is decoded with `struct` and tensors are
sliced lazily, so reading the header takes milliseconds and a truncated file is caught before any work.
Format: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md (version 2 and 3, little-endian).
"""

from __future__ import annotations

import math
import mmap
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from labrador.errors import ModelError

_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


@dataclass
class GgufTensor:
    name: str
    shape: tuple[int, ...]  # numpy order (rows last-dimension-first reversed from ggml's ne)
    qtype: int  # gguf.GGMLQuantizationType value
    offset: int  # absolute byte offset in the file
    nbytes: int


class GgufFile:
    """Parsed header of a GGUF file; `tensor(name)` dequantizes one tensor to float32 on demand."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = open(path, "rb")  # noqa: SIM115 - kept open for the memory map's lifetime
        try:
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError as err:  # empty file
            self._file.close()
            raise ModelError(f"{path} is empty, not a GGUF file.") from err
        self._pos = 0
        try:
            self._parse()
        except (struct.error, UnicodeDecodeError, IndexError, OverflowError, MemoryError) as err:
            self.close()
            raise ModelError(f"{path} is not a readable GGUF file ({err}); is it truncated or corrupt?") from err

    def close(self) -> None:
        self._map.close()
        self._file.close()

    def __enter__(self) -> GgufFile:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _read(self, fmt: str) -> Any:
        value = struct.unpack_from(fmt, self._map, self._pos)[0]
        self._pos += struct.calcsize(fmt)
        return value

    def _string(self) -> str:
        size = self._read("<Q")
        if self._pos + size > len(self._map):
            raise IndexError("string runs past the end of the file")
        text = self._map[self._pos:self._pos + size].decode("utf-8")
        self._pos += size
        return text

    def _value(self, vtype: int) -> Any:
        if vtype == _STRING:
            return self._string()
        if vtype == _ARRAY:
            item_type, count = self._read("<I"), self._read("<Q")
            if item_type in _SCALAR:  # numeric arrays in one step
                dtype = np.dtype(_SCALAR[item_type])
                values = np.frombuffer(self._map, dtype=dtype, count=count, offset=self._pos).tolist()
                self._pos += dtype.itemsize * count
                return values
            return [self._value(item_type) for _ in range(count)]
        if vtype not in _SCALAR:
            raise struct.error(f"unknown metadata value type {vtype}")
        return self._read(_SCALAR[vtype])

    def _parse(self) -> None:
        import gguf

        if self._map[:4] != b"GGUF":
            raise struct.error("missing the GGUF magic bytes")
        version = self._read("<4xI")
        if version not in (2, 3):
            raise struct.error(f"GGUF version {version} is not supported")
        n_tensors, n_kv = self._read("<Q"), self._read("<Q")
        self.metadata: dict[str, Any] = {}
        for _ in range(n_kv):
            key = self._string()
            self.metadata[key] = self._value(self._read("<I"))
        infos = []
        for _ in range(n_tensors):
            name = self._string()
            n_dims = self._read("<I")
            ne = [self._read("<Q") for _ in range(n_dims)]
            infos.append((name, ne, self._read("<I"), self._read("<Q")))
        alignment = int(self.metadata.get("general.alignment", 32))
        data_start = (self._pos + alignment - 1) // alignment * alignment
        self.tensors: dict[str, GgufTensor] = {}
        for name, ne, qtype, offset in infos:
            block, type_size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(qtype)]
            nbytes = math.prod(ne) // block * type_size
            start = data_start + offset
            if start + nbytes > len(self._map):
                raise IndexError(f"tensor {name} ends at byte {start + nbytes} but the file has {len(self._map)}")
            self.tensors[name] = GgufTensor(name, tuple(reversed(ne)), qtype, start, nbytes)

    def raw(self, name: str) -> np.ndarray:
        """The tensor's bytes as stored (quantized blocks included), without copying."""
        info = self.tensors[name]
        return np.frombuffer(self._map, dtype=np.uint8, count=info.nbytes, offset=info.offset)

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
