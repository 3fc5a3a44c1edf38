"""What a model file holds: format, size, architecture, parameter count, quantization, context length.

GGUF: read from the header (see `gguf_meta.py`). Hugging Face directories: `config.json` plus the
safetensors headers (an 8-byte length and a JSON table of tensor shapes), so no weights are loaded.
"""

from __future__ import annotations

import json
import math
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from labrador.errors import ModelError
from labrador.models.gguf_meta import read_gguf


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: Path
    format: str  # "gguf" | "hf"
    size_bytes: int
    architecture: str | None = None
    parameters: int | None = None
    quantization: str | None = None
    context_length: int | None = None


def _gguf_quantization(file_type: int | None, tensor_types: Counter[str]) -> str | None:
    if file_type is not None:
        from gguf.constants import LlamaFileType

        try:
            return LlamaFileType(int(file_type)).name.removeprefix("MOSTLY_").removeprefix("ALL_")
        except ValueError:
            pass
    # no (or unknown) file type: name the type that holds most tensors
    return tensor_types.most_common(1)[0][0] if tensor_types else None


def gguf_info(path: Path, name: str | None = None) -> ModelInfo:
    meta = read_gguf(path)
    types = Counter(t.type_name for t in meta.tensors.values())
    return ModelInfo(name=name or path.stem, path=path, format="gguf", size_bytes=path.stat().st_size,
                     architecture=meta.architecture, parameters=meta.parameter_count,
                     quantization=_gguf_quantization(meta.metadata.get("general.file_type"), types),
                     context_length=meta.context_length)


def safetensors_parameters(path: Path) -> tuple[int, Counter[str]]:
    """Element count and dtypes of one .safetensors file, from its JSON header only."""
    with path.open("rb") as fh:
        raw_len = fh.read(8)
        if len(raw_len) != 8:
            raise ModelError(f"{path} is not a safetensors file (shorter than its 8-byte header length).")
        (header_len,) = struct.unpack("<Q", raw_len)
        if header_len > path.stat().st_size:
            raise ModelError(f"{path} is a truncated or corrupt safetensors file; download or save it again.")
        try:
            header = json.loads(fh.read(header_len))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ModelError(f"{path} has a corrupt safetensors header; download or save it again.") from None
    dtypes = Counter[str]()
    for key, entry in header.items():
        if key != "__metadata__":
            dtypes[entry.get("dtype", "?")] += math.prod(int(dim) for dim in entry.get("shape", []))
    return sum(dtypes.values()), dtypes


def hf_info(path: Path, name: str | None = None) -> ModelInfo:
    config_file = path / "config.json"
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ModelError(f"{config_file}: cannot read the model config ({err}).") from None
    params, dtypes = 0, Counter[str]()
    for shard in sorted(path.glob("*.safetensors")):
        count, kinds = safetensors_parameters(shard)
        params += count
        dtypes.update(kinds)
    quant = config.get("quantization_config", {}).get("quant_method") if isinstance(
        config.get("quantization_config"), dict) else None
    dtype = dtypes.most_common(1)[0][0] if dtypes else config.get("torch_dtype") or config.get("dtype")
    archs = config.get("architectures") or [config.get("model_type")]
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return ModelInfo(name=name or path.name, path=path, format="hf", size_bytes=size,
                     architecture=archs[0] if archs else None, parameters=params or None,
                     quantization=quant or (str(dtype) if dtype else None),
                     context_length=config.get("max_position_embeddings"))


def model_info(path: Path, name: str | None = None) -> ModelInfo:
    """Describe a model file or HF directory (ModelError when it is not a readable model)."""
    from labrador.models.resolve import check_model_path, model_file

    fmt = check_model_path(path)
    return hf_info(path, name) if fmt == "hf" else gguf_info(model_file(path), name)
