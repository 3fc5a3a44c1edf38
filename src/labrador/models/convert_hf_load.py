"""GGUF -> dense transformers model and tokenizer, ready for `save_pretrained` (used by convert.gguf_to_hf)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labrador.errors import ModelError

# llama.cpp pre-tokenizer names whose split is "digits one by one, then the GPT-2 regex". transformers' GGUF
# tokenizer builder drops the digit split, which we put back so the saved tokenizer.json matches the model's
# original one (and converts back to the same `tokenizer.ggml.pre`).
_DIGIT_SPLIT_PRE = {"smollm", "refact"}


def load_gguf_model(gguf_path: Path, dtype: str) -> Any:
    """A plain (dequantized, trainable) transformers model from the GGUF, in `dtype`."""
    import torch
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"dtype": getattr(torch, dtype)}
    try:  # transformers >= 5 can keep GGUF blocks packed; ask for plain dense weights explicitly
        from transformers.utils.quantization_config import GgufConfig

        kwargs["quantization_config"] = GgufConfig(gguf_file=str(gguf_path), dequantize=True)
    except ImportError:
        pass
    try:
        model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name, **kwargs)
    except (ValueError, OSError, KeyError) as err:
        raise ModelError(f"transformers could not load {gguf_path}: {err}") from err
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:  # nothing is packed (dequantize=True); drop the marker so save_pretrained works
        quantizer.remove_quantization_config(model)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    for name, param in model.named_parameters():
        if not param.dtype.is_floating_point:
            raise ModelError(f"{gguf_path}: weight {name} is still quantized after loading; upgrade transformers.")
    model.config.name_or_path = gguf_path.stem
    return model


def save_tokenizer(gguf_path: Path, out_dir: Path, pre_tokenizer: str | None) -> None:
    """Tokenizer (tokenizer.json, tokenizer_config.json, chat template) rebuilt from the GGUF vocabulary."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None and pre_tokenizer in _DIGIT_SPLIT_PRE:
        from tokenizers import pre_tokenizers

        backend.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ])
    tokenizer.save_pretrained(str(out_dir))
