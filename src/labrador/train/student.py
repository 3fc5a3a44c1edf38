"""The student model: resolve a name/path, check it before loading, load it in float32 for training.

A GGUF student (the embedded SmolLM2 by default) is dequantized by transformers; that takes tens of seconds,
so the float32 result is saved once under the cache dir (keyed by the file's path, size and mtime) and later
runs load the safetensors copy in about a second.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labrador import paths
from labrador.errors import ModelError
from labrador.files import atomic_write_text
from labrador.train.checkpoint import write_hf_dir

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "vocab.json")


@dataclass(frozen=True)
class Student:
    path: Path
    format: str  # "gguf" or "hf"
    name: str


def resolve_student(name_or_path: str | Path | None) -> Student:
    """Resolve and check a student model without importing torch (errors come fast)."""
    from labrador.config import load_config
    from labrador.models.resolve import resolve_model

    resolved = resolve_model(name_or_path, load_config().models.models_dir)
    if resolved.format == "hf":
        check_hf_dir(resolved.path)
    return Student(resolved.path, resolved.format, resolved.name)


def check_hf_dir(path: Path) -> None:
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise ModelError(f"Model directory {path} has no tokenizer (none of {', '.join(TOKENIZER_FILES)}); "
                         "training needs the tokenizer the model was trained with. Copy the tokenizer files "
                         "into the directory, or use a checkpoint written by `ilab model train`, which "
                         "includes them.")
    if not any(path.glob("*.safetensors")) and not any(path.glob("*.bin")):
        raise ModelError(f"Model directory {path} has a config.json but no weights (*.safetensors or *.bin).")


def _gguf_cache_dir(path: Path) -> Path:
    """Where the dequantized copy of a GGUF lives, keyed by the file's bytes.

    Keyed by content, not path: every fresh install (a new venv, a CI clone) puts the same embedded GGUF at a new
    path with a new mtime, and a path key left one 0.5 GB copy behind per install.
    """
    root = paths.cache_dir() / "train" / "dequantized"
    return root / f"{path.stem}-{_content_key(path, root / 'keys')}"


def _content_key(path: Path, memo_dir: Path) -> str:
    """The first 16 hex digits of the file's SHA-256, remembered per path, size and mtime (hashing 4 GB takes s)."""
    stat = path.stat()
    ident = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    memo = memo_dir / hashlib.sha256(ident.encode()).hexdigest()[:16]
    try:
        return memo.read_text(encoding="utf-8").strip()
    except OSError:
        pass
    with path.open("rb") as handle:
        key = hashlib.file_digest(handle, "sha256").hexdigest()[:16]
    atomic_write_text(memo, key)
    return key


def hf_dir_for(student: Student) -> Path:
    """A Hugging Face directory for the student: the dir itself, or the cached dequantized copy of a GGUF."""
    if student.format == "hf":
        return student.path
    target = _gguf_cache_dir(student.path)
    if (target / "config.json").is_file() and (target / "tokenizer_config.json").is_file():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(student.path.parent), gguf_file=student.path.name)
        model = AutoModelForCausalLM.from_pretrained(str(student.path.parent), gguf_file=student.path.name,
                                                     dtype=torch.float32)
    except Exception as err:  # noqa: BLE001 - any loader failure means "this GGUF cannot be trained"
        raise ModelError(f"Could not load {student.path} for training ({type(err).__name__}: {err}); "
                         "transformers can dequantize only some GGUF architectures and quantizations.") from None
    # A GGUF-loaded model refuses save_pretrained (it counts as "quantized"): copy its float32 weights into a
    # plain model built from the same config.
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(model.state_dict())
    return write_hf_dir(target, plain, tokenizer)


def load_tokenizer(student: Student) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(hf_dir_for(student)))
    if not getattr(tokenizer, "chat_template", None):
        raise ModelError(f"The tokenizer of {student.path} has no chat template, so conversations cannot be "
                         "rendered; use an instruct/chat model as the student.")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(student: Student, device: Any = "cpu", attn_implementation: str = "sdpa") -> Any:
    """The student in float32 (autocast handles bf16), with the given attention implementation."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(hf_dir_for(student)), dtype=torch.float32,
                                                 attn_implementation=attn_implementation)
    model.config.use_cache = False
    return model.to(device)
