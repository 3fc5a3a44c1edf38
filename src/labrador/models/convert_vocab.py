"""Tokenizer metadata for a GGUF written from a Hugging Face directory (byte-level BPE, `tokenizer.ggml.model=gpt2`).

llama.cpp re-implements the tokenizer from the GGUF: the token strings (byte-level encoded, as in
tokenizer.json), their types, the BPE merges and a *pre-tokenizer name* (`tokenizer.ggml.pre`) that selects
one of its built-in split regexes. The Hugging Face file describes the pre-tokenizer as a structure, so we
recognise the few structures that the Llama-family models we support use, and refuse the rest with a message
that names the override (`--pre-tokenizer`) instead of silently picking a regex that tokenizes differently.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from labrador.errors import ModelError

# The Llama 3 split regex, as written in Meta's tokenizer.json (llama.cpp calls this pre-tokenizer "llama-bpe").
LLAMA3_REGEX = (
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
)

# Names llama.cpp knows that we let users force with --pre-tokenizer (a subset: the byte-level BPE ones).
KNOWN_PRE_TOKENIZERS = ("smollm", "refact", "gpt-2", "llama-bpe", "starcoder", "qwen2", "default")


def detect_pre_tokenizer(tokenizer_json: dict[str, Any]) -> str | None:
    """llama.cpp's name for the pre-tokenizer in `tokenizer.json`, or None when we do not recognise it."""
    pre = tokenizer_json.get("pre_tokenizer") or {}
    parts = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
    kinds = [p.get("type") for p in parts]
    if kinds == ["ByteLevel"] and parts[0].get("use_regex", True):
        return "gpt-2"  # the GPT-2 regex inside ByteLevel
    if kinds == ["Digits", "ByteLevel"] and parts[0].get("individual_digits") and parts[1].get("use_regex", True):
        return "smollm"  # digits one by one, then the GPT-2 regex (SmolLM, Granite 3: same as llama.cpp's "refact")
    if kinds == ["Split", "ByteLevel"] and not parts[1].get("use_regex", True):
        if (parts[0].get("pattern") or {}).get("Regex") == LLAMA3_REGEX:
            return "llama-bpe"
    return None


def _token_list(tokenizer_json: dict[str, Any], n_vocab: int) -> tuple[list[str], list[int]]:
    """Token strings by id and their GGUF token types; ids the tokenizer does not use become unused pads."""
    import gguf

    tokens: list[str | None] = [None] * n_vocab
    types = [int(gguf.TokenType.NORMAL)] * n_vocab
    entries = [(text, idx, None) for text, idx in tokenizer_json["model"]["vocab"].items()]
    entries += [(a["content"], a["id"], a) for a in tokenizer_json.get("added_tokens", [])]
    for text, idx, added in entries:
        if idx >= n_vocab:
            raise ModelError(
                f"tokenizer.json has token id {idx} ({text!r}) but the model's embedding has only {n_vocab} rows; "
                "resize the embeddings (model.resize_token_embeddings) before converting."
            )
        tokens[idx] = text
        if added is not None:
            types[idx] = int(gguf.TokenType.CONTROL if added.get("special") else gguf.TokenType.USER_DEFINED)
    for idx, text in enumerate(tokens):
        if text is None:  # padded embedding rows (vocab_size rounded up): llama.cpp needs one token per row
            tokens[idx] = f"[PAD{idx}]"
            types[idx] = int(gguf.TokenType.UNUSED)
    return [t for t in tokens if t is not None], types


def add_vocab(writer: Any, model_dir: Path, n_vocab: int, pre_tokenizer: str | None = None) -> None:
    """Write the tokenizer keys into `writer`."""
    import gguf

    path = model_dir / "tokenizer.json"
    if not path.is_file():
        raise ModelError(
            f"{model_dir} has no tokenizer.json. Save the tokenizer next to the weights "
            "(tokenizer.save_pretrained(dir)) and convert again."
        )
    try:
        tokenizer_json = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ModelError(f"{path} is not valid JSON ({err}); re-save the tokenizer.") from err
    model = tokenizer_json.get("model") or {}
    decoder_type = (tokenizer_json.get("decoder") or {}).get("type")
    if model.get("type") != "BPE" or model.get("byte_fallback") or decoder_type != "ByteLevel":
        raise ModelError(
            f"{path}: only byte-level BPE tokenizers (GPT-2 style: SmolLM, Llama 3, Granite 3) can be written to "
            f"GGUF by labrador; this one is model={model.get('type')!r}, byte_fallback={model.get('byte_fallback')}, "
            f"decoder={decoder_type!r} (SentencePiece-style, e.g. Llama 2 or Mistral v0.1)."
        )
    pre = pre_tokenizer or detect_pre_tokenizer(tokenizer_json)
    if pre is None:
        raise ModelError(
            f"{path}: the pre-tokenizer {json.dumps(tokenizer_json.get('pre_tokenizer'))[:300]} is not one labrador "
            f"recognises, and llama.cpp needs its name. Pass --pre-tokenizer with one of {', '.join(KNOWN_PRE_TOKENIZERS)} "
            "(the name llama.cpp's convert_hf_to_gguf.py gives this tokenizer)."
        )
    tokens, types = _token_list(tokenizer_json, n_vocab)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)

    # SpecialVocab reads merges, bos/eos/unk/pad ids, add_bos/add_eos and the chat template (tokenizer_config.json
    # or chat_template.jinja).
    special = gguf.SpecialVocab(model_dir, load_merges=True, n_vocab=n_vocab)
    if "bos" not in special.add_special_token:
        # A byte-level BPE tokenizer adds BOS only when its post-processor says so (SpecialVocab parsed that
        # above); llama.cpp would otherwise default to adding it, which changes every prompt.
        config_path = model_dir / "tokenizer_config.json"
        config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
        special.add_special_token["bos"] = bool(config.get("add_bos_token", False))
    special.add_to_gguf(writer, quiet=True)
