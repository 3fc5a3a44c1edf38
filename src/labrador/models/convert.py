"""GGUF <-> Hugging Face conversion: `gguf_to_hf` (dequantize for training) and `hf_to_gguf` (serve with llama.cpp).

Outputs appear atomically: everything is written under a hidden `.NAME.partial*` name beside the target and
renamed at the very end, so an interrupted conversion never leaves a file or directory that looks complete.

Output types for `hf_to_gguf`:
* f32, f16, bf16, q8_0 are written directly (numpy, `gguf` package; see convert_hf_gguf.py);
* the other quantizations (q4_0, q4_k_m, ...) are made by llama.cpp's own quantizer, `llama_model_quantize`
  from llama-cpp-python, from an intermediate GGUF in the source precision (f32 for f32 weights, else f16) -
  the same path as llama.cpp's `llama-quantize` tool.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from labrador.errors import ModelError
from labrador.files import move_into_place
from labrador.models.convert_hf_gguf import DIRECT_OUTTYPES, Progress, read_config, write_gguf

# --outtype name -> llama.cpp's llama_ftype number (include/llama.h), for the llama.cpp quantizer path.
LLAMA_CPP_OUTTYPES = {
    "q4_0": 2, "q4_1": 3, "q5_0": 8, "q5_1": 9, "q2_k": 10, "q3_k_s": 11, "q3_k_m": 12, "q3_k_l": 13,
    "q4_k_s": 14, "q4_k_m": 15, "q5_k_s": 16, "q5_k_m": 17, "q6_k": 18,
}
OUTTYPES = (*DIRECT_OUTTYPES, *LLAMA_CPP_OUTTYPES)
DTYPES = ("float32", "bfloat16", "float16")


def _partial(target: Path, suffix: str = "") -> Path:
    return target.with_name(f".{target.name}.partial{suffix}")


def _check_target(target: Path, force: bool) -> None:
    if target.exists() and not force:
        if target.is_dir() and not any(target.iterdir()):
            return  # an empty directory is fine to fill
        raise ModelError(f"{target} already exists; choose another --output or pass --force to replace it.")


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()


def default_output(source: Path, outtype: str = "f16") -> Path:
    """Where `ilab model convert` writes when --output is not given: the current directory, named after the
    input (never beside a GGUF, which may sit in a read-only package directory such as the embedded model's)."""
    if source.suffix == ".gguf":
        return Path.cwd() / f"{source.stem}-hf"
    return Path.cwd() / f"{source.resolve().name}-{outtype}.gguf"


def hf_to_gguf(model_dir: str | Path, out_path: str | Path, outtype: str = "f16", *,
               pre_tokenizer: str | None = None, force: bool = False, threads: int | None = None,
               progress: Progress | None = None) -> Path:
    """Convert a Hugging Face Llama-family directory to one GGUF file; returns its path."""
    model_dir, out_path = Path(model_dir), Path(out_path)
    outtype = outtype.lower()
    if outtype not in OUTTYPES:
        raise ModelError(f"Unknown output type {outtype!r}; choose one of {', '.join(OUTTYPES)}.")
    config = read_config(model_dir)
    _check_target(out_path, force)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _partial(out_path)
    try:
        if outtype in DIRECT_OUTTYPES:
            write_gguf(model_dir, tmp, outtype, config, pre_tokenizer, progress)
        else:
            # The intermediate keeps the source precision (f32 for f32 weights), so the only rounding is
            # llama.cpp's own; f16 otherwise, which holds bf16/f16 weights at the source's size.
            between = "f32" if _source_is_f32(model_dir) else "f16"
            intermediate = _partial(out_path, f".{between}")
            try:
                write_gguf(model_dir, intermediate, between, config, pre_tokenizer, progress)
                if progress:
                    progress(f"quantizing to {outtype} (llama.cpp)", 0, 1)
                quantize_gguf(intermediate, tmp, outtype, threads=threads)
                if progress:
                    progress(f"quantizing to {outtype} (llama.cpp)", 1, 1)
            finally:
                _remove(intermediate)
        move_into_place(tmp, out_path)
    finally:
        _remove(tmp)
    return out_path


def _source_is_f32(model_dir: Path) -> bool:
    from safetensors import safe_open

    from labrador.models.convert_hf_gguf import weight_files

    with safe_open(str(weight_files(model_dir)[0]), framework="pt") as f:
        return any(f.get_slice(key).get_dtype() == "F32" and key.endswith("proj.weight") for key in f.keys())


def quantize_gguf(src: Path, dst: Path, outtype: str, threads: int | None = None) -> None:
    """Requantize a GGUF with llama.cpp's quantizer (the C function behind the `llama-quantize` tool)."""
    import ctypes
    import sys
    import tempfile

    try:
        import llama_cpp
    except ImportError as err:
        raise ModelError(f"--outtype {outtype} needs llama-cpp-python ({err}); use f16 or q8_0 instead.") from err
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = LLAMA_CPP_OUTTYPES[outtype]
    params.nthread = threads or min(os.cpu_count() or 1, 8)
    # llama.cpp writes a line per tensor to stderr (C level): keep it in a file, show its tail only on failure.
    sys.stderr.flush()
    with tempfile.TemporaryFile() as log:
        saved = os.dup(2)
        os.dup2(log.fileno(), 2)
        try:
            status = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        log.seek(0)
        tail = log.read().decode(errors="replace").strip().splitlines()[-3:]
    if status != 0:
        raise ModelError(f"llama.cpp could not quantize {src} to {outtype} (status {status}): {' '.join(tail)}")


def gguf_to_hf(gguf_path: str | Path, out_dir: str | Path, dtype: str = "float32", *, force: bool = False,
               progress: Callable[[str, int, int], None] | None = None) -> Path:
    """Dequantize a GGUF into a Hugging Face directory (safetensors, config, tokenizer, generation config)."""
    gguf_path, out_dir = Path(gguf_path), Path(out_dir)
    if dtype not in DTYPES:
        raise ModelError(f"Unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}.")
    if not gguf_path.is_file():
        raise ModelError(f"{gguf_path} does not exist or is not a file; pass a .gguf file or a model directory.")
    from labrador.models.convert_gguf_hf import gguf_to_hf_names, write_hf
    from labrador.models.gguf_meta import GgufFile

    _check_target(out_dir, force)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = _partial(out_dir)
    _remove(tmp)
    try:
        with GgufFile(gguf_path) as gg:  # parses the header: a truncated or foreign file fails here
            names = gguf_to_hf_names(gg)
            if names is not None:  # llama + byte-level BPE: our own fast path
                write_hf(gg, names, tmp, dtype, progress)
            else:
                _gguf_to_hf_transformers(gguf_path, tmp, dtype, gg.metadata, progress)
        move_into_place(tmp, out_dir)
    finally:
        _remove(tmp)
    return out_dir


def _gguf_to_hf_transformers(gguf_path: Path, tmp: Path, dtype: str, metadata: dict,
                             progress: Callable[[str, int, int], None] | None) -> None:
    """Other architectures and vocabularies: transformers' own GGUF loader (slower, broader)."""
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    from labrador.models.convert_hf_load import load_gguf_model, save_tokenizer

    arch = metadata.get("general.architecture")
    if arch not in GGUF_SUPPORTED_ARCHITECTURES:
        raise ModelError(f"{gguf_path}: transformers cannot load GGUF architecture {arch!r} "
                         f"(supported: {', '.join(sorted(GGUF_SUPPORTED_ARCHITECTURES))}).")
    if progress:
        progress("dequantizing weights (transformers)", 0, 2)
    model = load_gguf_model(gguf_path, dtype)
    model.save_pretrained(str(tmp), safe_serialization=True)
    del model
    if progress:
        progress("writing tokenizer", 1, 2)
    save_tokenizer(gguf_path, tmp, metadata.get("tokenizer.ggml.pre"))
