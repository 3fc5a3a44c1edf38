"""GGUF (llama architecture, byte-level BPE vocabulary) -> Hugging Face directory, without transformers' loader.

transformers can load a GGUF itself (and convert.gguf_to_hf falls back to it for other architectures), but for
SmolLM2 that costs ~25 CPU s for the weights and ~7 s for the tokenizer; doing the same here takes a few
seconds: dequantize each tensor with `gguf.quants`, undo llama.cpp's interleaved rotary row order on q/k
(the inverse of convert_hf_gguf._permute_rope), write safetensors shards, and rebuild tokenizer.json from the
GGUF's tokens, types and merges with the `tokenizers` library.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from labrador.models.convert_vocab import LLAMA3_REGEX
from labrador.models.gguf_meta import GgufFile

SHARD_BYTES = 2 * 1024**3
_BUILDABLE_PRE = {"smollm", "refact", "gpt-2", "llama-bpe"}


def _hf_names(n_layers: int) -> list[str]:
    names = ["model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"]
    for i in range(n_layers):
        layer = f"model.layers.{i}"
        names += [f"{layer}.input_layernorm.weight", f"{layer}.post_attention_layernorm.weight"]
        names += [f"{layer}.self_attn.{p}_proj.{s}" for p in "qkvo" for s in ("weight", "bias")]
        names += [f"{layer}.mlp.{p}_proj.weight" for p in ("gate", "up", "down")]
    return names


def gguf_to_hf_names(gg: GgufFile) -> dict[str, str] | None:
    """GGUF tensor name -> Hugging Face name, or None when this file needs transformers' general loader."""
    import gguf

    md = gg.metadata
    if (md.get("general.architecture") != "llama" or md.get("tokenizer.ggml.model") != "gpt2"
            or md.get("tokenizer.ggml.pre", "gpt-2") not in _BUILDABLE_PRE or "llama.rope.scaling.type" in md):
        return None
    n_layers = int(md["llama.block_count"])
    tensor_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_layers)
    inverse = {tensor_map.get_name(h, try_suffixes=(".weight", ".bias")): h for h in _hf_names(n_layers)}
    if any(name not in inverse for name in gg.tensors):  # e.g. rope_freqs (Llama 3.1), experts
        return None
    return {name: inverse[name] for name in gg.tensors}


def _unpermute_rope(weights: np.ndarray, n_head: int) -> np.ndarray:
    """Interleaved rotary pairs (llama.cpp) -> half-split rows (Hugging Face), per head."""
    return (weights.reshape(n_head, weights.shape[0] // n_head // 2, 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def _write_weights(gg: GgufFile, names: dict[str, str], out_dir: Path, dtype: str,
                   progress: Callable[[str, int, int], None] | None) -> None:
    import torch
    from safetensors.torch import save_file

    md = gg.metadata
    n_head = int(md["llama.attention.head_count"])
    n_head_kv = int(md.get("llama.attention.head_count_kv", n_head))
    shards: list[dict[str, Any]] = [{}]
    size = 0
    for i, (gguf_name, hf_name) in enumerate(sorted(names.items(), key=lambda kv: kv[1])):
        data = gg.tensor(gguf_name)
        if ".self_attn.q_proj." in hf_name:
            data = _unpermute_rope(data, n_head)
        elif ".self_attn.k_proj." in hf_name:
            data = _unpermute_rope(data, n_head_kv)
        tensor = torch.from_numpy(np.ascontiguousarray(data)).to(getattr(torch, dtype))
        if size and size + tensor.nbytes > SHARD_BYTES:
            shards.append({})
            size = 0
        shards[-1][hf_name] = tensor
        size += tensor.nbytes
        if progress:
            progress("dequantizing tensors", i + 1, len(names))
    if len(shards) == 1:
        save_file(shards[0], str(out_dir / "model.safetensors"), metadata={"format": "pt"})
        return
    weight_map = {}
    for n, shard in enumerate(shards, start=1):
        file = f"model-{n:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(out_dir / file), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(shard, file))
    total = sum(t.nbytes for shard in shards for t in shard.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (out_dir / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))


def _f32(value: float) -> float:
    """GGUF stores float32: 1e-05 comes back as 9.99999974e-06; print it as the config that was written."""
    return float(f"{value:.7g}")


def _write_config(gg: GgufFile, out_dir: Path, dtype: str) -> None:
    from transformers import GenerationConfig, LlamaConfig

    md = gg.metadata
    n_head = int(md["llama.attention.head_count"])
    hidden = int(md["llama.embedding_length"])
    special = {k: md.get(f"tokenizer.ggml.{g}_token_id") for k, g in
               (("bos_token_id", "bos"), ("eos_token_id", "eos"), ("pad_token_id", "padding"))}
    config = LlamaConfig(
        vocab_size=gg.tensors["token_embd.weight"].shape[0], hidden_size=hidden,
        intermediate_size=int(md["llama.feed_forward_length"]), num_hidden_layers=int(md["llama.block_count"]),
        num_attention_heads=n_head, num_key_value_heads=int(md.get("llama.attention.head_count_kv", n_head)),
        head_dim=int(md.get("llama.attention.key_length", md.get("llama.rope.dimension_count", hidden // n_head))),
        max_position_embeddings=int(md.get("llama.context_length", 2048)),
        rms_norm_eps=_f32(md.get("llama.attention.layer_norm_rms_epsilon", 1e-6)),
        rope_theta=_f32(md.get("llama.rope.freq_base", 10000.0)),
        tie_word_embeddings="output.weight" not in gg.tensors,
        attention_bias="blk.0.attn_q.bias" in gg.tensors, architectures=["LlamaForCausalLM"], dtype=dtype,
        **special,
    )
    config.save_pretrained(str(out_dir))
    GenerationConfig(**{k: v for k, v in special.items() if v is not None}).save_pretrained(str(out_dir))


def _write_tokenizer(gg: GgufFile, out_dir: Path) -> None:
    import gguf
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    md = gg.metadata
    tokens: list[str] = md["tokenizer.ggml.tokens"]
    types: list[int] = md.get("tokenizer.ggml.token_type", [int(gguf.TokenType.NORMAL)] * len(tokens))
    pre = md.get("tokenizer.ggml.pre", "gpt-2")
    merges = [tuple(m.split(" ", 1)) for m in md.get("tokenizer.ggml.merges", [])]
    bpe = models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges, fuse_unk=False,
                     ignore_merges=pre == "llama-bpe")  # Llama 3 looks whole words up before merging
    tok = Tokenizer(bpe)
    if pre == "llama-bpe":
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    elif pre in ("smollm", "refact"):
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)])
    else:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    control, user = int(gguf.TokenType.CONTROL), int(gguf.TokenType.USER_DEFINED)
    tok.add_tokens([AddedToken(t, special=types[i] == control, normalized=False)
                    for i, t in enumerate(tokens) if types[i] in (control, user)])

    def token(kind: str) -> str | None:
        idx = md.get(f"tokenizer.ggml.{kind}_token_id")
        return tokens[idx] if idx is not None and idx < len(tokens) else None

    bos = token("bos")
    if md.get("tokenizer.ggml.add_bos_token", False) and bos is not None:
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tokens.index(bos))])
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=token("eos"),
                                   unk_token=token("unknown"), pad_token=token("padding"))
    if md.get("tokenizer.chat_template"):
        fast.chat_template = md["tokenizer.chat_template"]
    fast.save_pretrained(str(out_dir))


def write_hf(gg: GgufFile, names: dict[str, str], out_dir: Path, dtype: str,
             progress: Callable[[str, int, int], None] | None = None) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_weights(gg, names, out_dir, dtype, progress)
    _write_config(gg, out_dir, dtype)
    _write_tokenizer(gg, out_dir)
