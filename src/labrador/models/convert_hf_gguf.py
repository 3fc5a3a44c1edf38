"""Hugging Face Llama-family directory -> GGUF (f32, f16, bf16 or q8_0), written tensor by tensor.

The layout and key names are those of llama.cpp's own converter (convert_hf_to_gguf.py), reduced to the
architectures labrador trains: LlamaForCausalLM (SmolLM2, Llama 1-3, TinyLlama), MistralForCausalLM (same
graph) and GraniteForCausalLM (Llama plus four scale factors). Two details matter for correctness:

* Hugging Face stores q_proj/k_proj rows in "half-split" rotary order, llama.cpp in the original interleaved
  order; transformers' GGUF loader un-permutes on load, so we permute back on write (`_permute_rope`).
* Tied embeddings (SmolLM2): no `output.weight` is written and llama.cpp reuses `token_embd.weight`.

Memory stays at one tensor at a time: tensor infos are computed from the safetensors headers first, then each
tensor is read, converted and appended.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from labrador.errors import ModelError
from labrador.models.convert_vocab import add_vocab

# Hugging Face class -> llama.cpp architecture name (gguf.MODEL_ARCH member name).
SUPPORTED_ARCHITECTURES = {
    "LlamaForCausalLM": "LLAMA",
    "MistralForCausalLM": "LLAMA",
    "GraniteForCausalLM": "GRANITE",
}

# Output types written directly here (numpy); the others go through llama.cpp's quantizer (see convert.py).
DIRECT_OUTTYPES = ("f32", "f16", "bf16", "q8_0")

Progress = Callable[[str, int, int], None]


@dataclass
class _Planned:
    hf_name: str
    gguf_name: str
    shape: tuple[int, ...]
    qtype: Any  # gguf.GGMLQuantizationType
    source: Path


def read_config(model_dir: Path) -> dict[str, Any]:
    """config.json of a supported architecture, or ModelError saying what is wrong."""
    if not model_dir.exists():
        raise ModelError(f"{model_dir} does not exist; pass a Hugging Face model directory or a .gguf file.")
    path = model_dir / "config.json"
    if not path.is_file():
        hint = " It looks like a LoRA adapter: merge it into its base model first." if (
            model_dir / "adapter_config.json").is_file() else ""
        raise ModelError(f"{model_dir} has no config.json, so it is not a Hugging Face model directory.{hint}")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ModelError(f"{path} is not valid JSON ({err}).") from err
    arch = (config.get("architectures") or ["?"])[0]
    if arch not in SUPPORTED_ARCHITECTURES:
        raise ModelError(
            f"{path}: architecture {arch!r} cannot be converted to GGUF by labrador; supported: "
            f"{', '.join(SUPPORTED_ARCHITECTURES)}."
        )
    return config


def _rope_params(config: dict[str, Any]) -> dict[str, Any]:
    # transformers 5 writes `rope_parameters` (with rope_theta inside); 4.x writes rope_theta + rope_scaling.
    params = dict(config.get("rope_scaling") or {})
    params.update(config.get("rope_parameters") or {})
    params.setdefault("rope_theta", config.get("rope_theta", 10000.0))
    return params


def _head_dim(config: dict[str, Any]) -> int:
    return int(config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"])


def add_metadata(writer: Any, config: dict[str, Any], name: str, arch: str) -> None:
    """Hyper-parameters under `<arch>.*`, as llama.cpp's loader expects them."""
    writer.add_name(name)
    writer.add_context_length(int(config.get("max_position_embeddings", 2048)))
    writer.add_embedding_length(int(config["hidden_size"]))
    writer.add_block_count(int(config["num_hidden_layers"]))
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_head_count(int(config["num_attention_heads"]))
    writer.add_head_count_kv(int(config.get("num_key_value_heads") or config["num_attention_heads"]))
    writer.add_layer_norm_rms_eps(float(config.get("rms_norm_eps", 1e-6)))
    writer.add_vocab_size(int(config["vocab_size"]))
    writer.add_rope_dimension_count(_head_dim(config))
    if config.get("head_dim") and arch != "GRANITE":  # llama.cpp's granite graph derives it
        writer.add_key_length(int(config["head_dim"]))
        writer.add_value_length(int(config["head_dim"]))
    rope = _rope_params(config)
    writer.add_rope_freq_base(float(rope["rope_theta"]))
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    if rope_type == "linear":
        import gguf

        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(rope["factor"]))
    elif rope_type not in ("default", "llama3"):  # llama3 is written as the rope_freqs tensor
        raise ModelError(f"config.json: rope type {rope_type!r} is not supported for GGUF conversion yet.")
    if arch == "GRANITE":
        for key, add in (("attention_multiplier", writer.add_attention_scale),
                         ("embedding_multiplier", writer.add_embedding_scale),
                         ("residual_multiplier", writer.add_residual_scale),
                         ("logits_scaling", writer.add_logit_scale)):
            if config.get(key):
                add(float(config[key]))


def _llama3_rope_factors(config: dict[str, Any]) -> np.ndarray | None:
    """Per-frequency scaling factors for Llama 3.1+ long context (stored as the `rope_freqs.weight` tensor)."""
    rope = _rope_params(config)
    if rope.get("rope_type", rope.get("type")) != "llama3":
        return None
    dim = _head_dim(config)
    freqs = 1.0 / (float(rope["rope_theta"]) ** (np.arange(0, dim, 2, dtype=np.float64) / dim))
    factor = float(rope.get("factor", 8.0))
    low, high = float(rope.get("low_freq_factor", 1.0)), float(rope.get("high_freq_factor", 4.0))
    old_ctx = float(rope.get("original_max_position_embeddings", 8192))
    out = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < old_ctx / high:
            out.append(1.0)
        elif wavelen > old_ctx / low:
            out.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.asarray(out, dtype=np.float32)


def _permute_rope(weights: np.ndarray, n_head: int) -> np.ndarray:
    """Half-split rotary rows (Hugging Face) -> interleaved pairs (llama.cpp), per head."""
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def weight_files(model_dir: Path) -> list[Path]:
    """The model's safetensors files: the index's shards, else model.safetensors, else every *.safetensors."""
    index = model_dir / "model.safetensors.index.json"
    if index.is_file():
        files = sorted({model_dir / name for name in json.loads(index.read_text())["weight_map"].values()})
    elif (model_dir / "model.safetensors").is_file():
        files = [model_dir / "model.safetensors"]
    else:  # other names (adapter_model.safetensors is a LoRA adapter, not a model)
        files = sorted(p for p in model_dir.glob("*.safetensors") if not p.name.startswith("adapter_"))
    if not files:
        raise ModelError(
            f"{model_dir} has config.json but no *.safetensors weights; save the model with "
            "save_pretrained(dir, safe_serialization=True)."
        )
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise ModelError(f"{model_dir}: shards listed in model.safetensors.index.json are missing: {missing}.")
    return files


def _tensor_shapes(files: list[Path]) -> Iterator[tuple[str, tuple[int, ...], Path]]:
    from safetensors import safe_open

    for file in files:
        with safe_open(str(file), framework="pt") as f:
            for key in f.keys():
                yield key, tuple(f.get_slice(key).get_shape()), file


def _out_qtype(outtype: str, gguf_name: str, shape: tuple[int, ...]) -> Any:
    import gguf

    q = gguf.GGMLQuantizationType
    if len(shape) < 2 or outtype == "f32" or gguf_name == "rope_freqs.weight":
        return q.F32  # norms and biases stay F32: llama.cpp computes them in F32 and some ops require it
    if outtype == "q8_0":
        block = gguf.GGML_QUANT_SIZES[q.Q8_0][0]
        return q.Q8_0 if shape[-1] % block == 0 else q.F16  # rows must be whole blocks
    return {"f16": q.F16, "bf16": q.BF16}[outtype]


def write_gguf(model_dir: Path, out_path: Path, outtype: str, config: dict[str, Any],
               pre_tokenizer: str | None = None, progress: Progress | None = None) -> None:
    """Write `out_path` (which the caller later renames into place) from the HF directory."""
    import logging

    import gguf
    import torch
    from safetensors import safe_open

    # gguf logs every key and merge count at INFO/WARNING; the CLI shows its own progress instead.
    logging.getLogger("gguf").setLevel(logging.ERROR)
    hf_arch = config["architectures"][0]
    arch = SUPPORTED_ARCHITECTURES[hf_arch]
    n_blocks = int(config["num_hidden_layers"])
    n_head = int(config["num_attention_heads"])
    n_head_kv = int(config.get("num_key_value_heads") or n_head)
    tensor_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH[arch], n_blocks)
    tied = bool(config.get("tie_word_embeddings", False))

    plan: list[_Planned] = []
    for hf_name, shape, file in _tensor_shapes(weight_files(model_dir)):
        if hf_name.endswith("rotary_emb.inv_freq") or (tied and hf_name == "lm_head.weight"):
            continue  # recomputed by llama.cpp / shared with token_embd
        name = tensor_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise ModelError(f"{file}: tensor {hf_name!r} has no GGUF name for {hf_arch}; is the checkpoint complete?")
        plan.append(_Planned(hf_name, name, shape, _out_qtype(outtype, name, shape), file))
    if not any(p.gguf_name == "token_embd.weight" for p in plan):
        raise ModelError(f"{model_dir}: no embedding tensor (model.embed_tokens.weight) in the safetensors files.")
    n_vocab = next(p.shape[0] for p in plan if p.gguf_name == "token_embd.weight")
    rope_factors = _llama3_rope_factors(config)

    writer = gguf.GGUFWriter(str(out_path), gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH[arch]])
    add_metadata(writer, config, model_dir.name, arch)
    file_type = {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
                 "bf16": gguf.LlamaFileType.MOSTLY_BF16, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[outtype]
    writer.add_file_type(int(file_type))
    if outtype == "q8_0":
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    add_vocab(writer, model_dir, n_vocab, pre_tokenizer)

    if rope_factors is not None:
        writer.add_tensor_info("rope_freqs.weight", rope_factors.shape, np.dtype(np.float32), rope_factors.nbytes)
    for p in plan:  # described by their bytes, so one call fits every type (f32 and f16 included)
        byte_shape = gguf.quant_shape_to_byte_shape(p.shape, p.qtype)
        writer.add_tensor_info(p.gguf_name, byte_shape, np.dtype(np.uint8), math.prod(byte_shape), raw_dtype=p.qtype)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    if rope_factors is not None:
        writer.write_tensor_data(rope_factors)
    with ExitStack() as stack:
        handles: dict[Path, Any] = {}
        for i, p in enumerate(plan):
            if p.source not in handles:
                handles[p.source] = stack.enter_context(safe_open(str(p.source), framework="pt"))
            data = handles[p.source].get_tensor(p.hf_name).to(torch.float32).numpy()
            if p.hf_name.endswith(("q_proj.weight", "q_proj.bias")):
                data = _permute_rope(data, n_head)
            elif p.hf_name.endswith(("k_proj.weight", "k_proj.bias")):
                data = _permute_rope(data, n_head_kv)
            writer.write_tensor_data(gguf.quants.quantize(data, p.qtype))  # f32/f16: a plain numpy cast
            if progress:
                progress("writing tensors", i + 1, len(plan))
    writer.close()
