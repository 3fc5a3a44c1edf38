"""HF -> GGUF on a tiny random Llama (real transformers model, real tokenizer, real llama.cpp), and CLI errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from labrador.errors import ModelError
from labrador.models.convert import gguf_to_hf, hf_to_gguf

TEXT = ["the quick brown fox jumps over the lazy dog 12345", "a model that reads numbers 2024 and words",
        "llamas eat grass; dogs chase the fox"] * 20


@pytest.fixture(scope="module")
def tiny_hf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Llama (GQA, untied lm_head, padded vocabulary) with a byte-level BPE tokenizer trained here."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = tmp_path_factory.mktemp("tiny-llama")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(TEXT, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                   unk_token="<|endoftext|>", pad_token="<|im_end|>")
    fast.save_pretrained(out)
    config = LlamaConfig(vocab_size=320, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                         rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False, initializer_range=0.2,
                         bos_token_id=1, eos_token_id=2)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():  # non-trivial norm weights, so a mix-up between tensors cannot go unnoticed
        for name, param in model.named_parameters():
            if "norm" in name:
                param.uniform_(0.5, 1.5)
    model.save_pretrained(out, safe_serialization=True)
    return out


def _token_ids(model_dir: Path) -> list[int]:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)("the lazy fox reads 2024 words").input_ids


def _hf_logits(model_dir: Path, ids: list[int]) -> np.ndarray:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].numpy()


def _llama_cpp_logits(gguf_path: Path, ids: list[int]) -> np.ndarray:
    from llama_cpp import Llama

    llm = Llama(model_path=str(gguf_path), n_ctx=64, n_threads=2, logits_all=True, verbose=False)
    llm.eval(ids)
    logits = np.array(llm.scores[: len(ids)], dtype=np.float32)
    llm.close()
    return logits


@pytest.fixture(scope="module")
def reference(tiny_hf: Path) -> tuple[list[int], np.ndarray]:
    ids = _token_ids(tiny_hf)
    return ids, _hf_logits(tiny_hf, ids)


@pytest.mark.slow
@pytest.mark.parametrize(("outtype", "tolerance"), [("f32", 5e-3), ("f16", 0.02), ("bf16", 0.05), ("q8_0", 0.1)])
def test_gguf_logits_match_transformers(tiny_hf: Path, reference: tuple[list[int], np.ndarray],
                                        tmp_path: Path, outtype: str, tolerance: float) -> None:
    """Same logits from llama.cpp as from transformers, at every position (so RoPE's q/k permutation is right)."""
    ids, expected = reference
    out = hf_to_gguf(tiny_hf, tmp_path / f"tiny-{outtype}.gguf", outtype)
    got = _llama_cpp_logits(out, ids)
    assert len(ids) >= 8
    scale = float(np.abs(expected).max())
    assert scale > 1.0  # random init large enough for the logits to carry signal
    print(f"{outtype}: max |diff| {np.abs(got - expected).max():.4g} of max |logit| {scale:.3g}")
    assert float(np.abs(got - expected).max()) <= tolerance * scale
    assert (got.argmax(-1) == expected.argmax(-1)).mean() >= (1.0 if outtype != "q8_0" else 0.85)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["granite", "mistral", "llama-rope-linear", "llama-rope-llama3"])
def test_other_llama_family_architectures(arch: str, tiny_hf: Path, tmp_path: Path,
                                          reference: tuple[list[int], np.ndarray]) -> None:
    """Granite (llama.cpp's `granite` graph with its four multipliers), Mistral, and Llama with rope scaling
    (linear: GGUF keys; llama3: the rope_freqs tensor) convert with matching logits."""
    import torch
    from transformers import (
        GraniteConfig,
        GraniteForCausalLM,
        LlamaConfig,
        LlamaForCausalLM,
        MistralConfig,
        MistralForCausalLM,
    )

    llama3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
              "original_max_position_embeddings": 8, "rope_theta": 10000.0}
    config_cls, model_cls, extra = {
        "granite": (GraniteConfig, GraniteForCausalLM, {"attention_multiplier": 0.2, "embedding_multiplier": 3.0,
                                                        "residual_multiplier": 0.5, "logits_scaling": 2.0}),
        "mistral": (MistralConfig, MistralForCausalLM, {"sliding_window": None}),
        "llama-rope-linear": (LlamaConfig, LlamaForCausalLM,
                              {"rope_parameters": {"rope_type": "linear", "factor": 4.0, "rope_theta": 10000.0}}),
        "llama-rope-llama3": (LlamaConfig, LlamaForCausalLM, {"rope_parameters": llama3}),
    }[arch]
    if "rope_parameters" not in extra:
        extra["rope_theta"] = 10000.0
    model_dir = tmp_path / arch
    model_dir.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (model_dir / name).write_bytes((tiny_hf / name).read_bytes())
    config = config_cls(vocab_size=320, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                        rms_norm_eps=1e-5, tie_word_embeddings=False, initializer_range=0.2, **extra)
    torch.manual_seed(1)
    model = model_cls(config).eval()
    model.save_pretrained(model_dir)
    ids = reference[0]
    with torch.no_grad():
        expected = model(torch.tensor([ids])).logits[0].numpy()
    got = _llama_cpp_logits(hf_to_gguf(model_dir, tmp_path / f"{arch}.gguf", "f32"), ids)
    assert float(np.abs(got - expected).max()) <= 5e-3 * float(np.abs(expected).max())  # measured ~2e-3


def test_gguf_metadata(tiny_hf: Path, tmp_path: Path) -> None:
    import gguf

    out = hf_to_gguf(tiny_hf, tmp_path / "tiny.gguf", "q8_0")
    reader = gguf.GGUFReader(str(out))
    field = {k: reader.fields[k].contents() for k in reader.fields if not k.startswith("tokenizer.ggml.merges")}
    assert field["general.architecture"] == "llama"
    assert field["general.file_type"] == int(gguf.LlamaFileType.MOSTLY_Q8_0)
    assert (field["llama.attention.head_count"], field["llama.attention.head_count_kv"]) == (4, 2)
    assert (field["llama.block_count"], field["llama.context_length"], field["llama.rope.dimension_count"]) == (2, 128, 16)
    assert field["llama.rope.freq_base"] == pytest.approx(10000.0)
    assert field["tokenizer.ggml.model"] == "gpt2"
    assert field["tokenizer.ggml.pre"] == "smollm"  # digits split one by one, then the GPT-2 regex
    assert (field["tokenizer.ggml.bos_token_id"], field["tokenizer.ggml.eos_token_id"]) == (1, 2)
    assert field["tokenizer.ggml.add_bos_token"] is False
    tokens, types = field["tokenizer.ggml.tokens"], field["tokenizer.ggml.token_type"]
    assert len(tokens) == 320 and tokens[0] == "<|endoftext|>" and types[0] == gguf.TokenType.CONTROL
    assert tokens[-1] == "[PAD319]" and types[-1] == gguf.TokenType.UNUSED  # embedding rows beyond the tokenizer
    kinds = {t.name: t.tensor_type for t in reader.tensors}
    assert kinds["output.weight"] == gguf.GGMLQuantizationType.Q8_0  # untied lm_head is written
    assert kinds["blk.0.attn_q.weight"] == gguf.GGMLQuantizationType.Q8_0
    assert kinds["blk.0.attn_norm.weight"] == gguf.GGMLQuantizationType.F32  # 1-D tensors stay F32
    assert not list(tmp_path.glob(".*partial*"))


@pytest.mark.slow
def test_llama_cpp_quantizer_output(tiny_hf: Path, tmp_path: Path) -> None:
    """q4_k_m goes through llama.cpp's own quantizer; the file loads and generates."""
    import gguf
    from llama_cpp import Llama

    out = hf_to_gguf(tiny_hf, tmp_path / "tiny-q4_k_m.gguf", "q4_k_m")
    assert gguf.GGUFReader(str(out)).fields["general.file_type"].contents() == 15  # LLAMA_FTYPE_MOSTLY_Q4_K_M
    llm = Llama(model_path=str(out), n_ctx=64, n_threads=2, verbose=False)
    text = llm.create_completion("the quick", max_tokens=4, temperature=0.0)["choices"][0]["text"]
    assert isinstance(text, str) and llm.n_tokens > 2
    assert not list(tmp_path.glob(".*partial*"))


def test_f32_round_trip_is_exact(tiny_hf: Path, tmp_path: Path) -> None:
    """HF -> GGUF f32 -> HF (our llama reader) gives back the same weights, config and tokenization."""
    from safetensors.numpy import load_file
    from transformers import AutoTokenizer

    back = gguf_to_hf(hf_to_gguf(tiny_hf, tmp_path / "tiny.gguf", "f32"), tmp_path / "back")
    before, after = load_file(tiny_hf / "model.safetensors"), load_file(back / "model.safetensors")
    assert sorted(before) == sorted(after)
    for name, value in before.items():  # q/k rows permuted for llama.cpp and back: bit-exact
        assert np.array_equal(value, after[name]), name
    config_before, config_after = (json.loads((d / "config.json").read_text()) for d in (tiny_hf, back))
    for key in ("hidden_size", "num_key_value_heads", "head_dim", "vocab_size", "tie_word_embeddings", "rms_norm_eps"):
        assert config_after[key] == config_before[key], key
    text = "<|im_start|>the lazy fox reads 2024 words<|im_end|>"
    assert AutoTokenizer.from_pretrained(back)(text).input_ids == AutoTokenizer.from_pretrained(tiny_hf)(text).input_ids


def test_sharded_hf_output_loads_and_converts_back(tiny_hf: Path, tmp_path: Path,
                                                  reference: tuple[list[int], np.ndarray],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Big models are written as indexed shards; transformers loads them and hf_to_gguf reads them back."""
    from labrador.models import convert_gguf_hf

    monkeypatch.setattr(convert_gguf_hf, "SHARD_BYTES", 60_000)  # the tiny model is ~0.3 MB in f32
    back = gguf_to_hf(hf_to_gguf(tiny_hf, tmp_path / "tiny.gguf", "f32"), tmp_path / "sharded")
    index = json.loads((back / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 2 and not (back / "model.safetensors").exists()
    ids, expected = reference
    assert np.allclose(_hf_logits(back, ids), expected, atol=1e-5)
    again = _llama_cpp_logits(hf_to_gguf(back, tmp_path / "again.gguf", "f32"), ids)
    assert float(np.abs(again - expected).max()) <= 5e-3 * float(np.abs(expected).max())


def test_failed_conversion_leaves_nothing(tiny_hf: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    broken = work / "broken"
    broken.mkdir(parents=True)
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (broken / name).write_bytes((tiny_hf / name).read_bytes())
    (broken / "model.safetensors").write_bytes((tiny_hf / "model.safetensors").read_bytes()[:5000])  # truncated
    with pytest.raises(Exception):  # noqa: B017 - safetensors' own error type; what matters is what is left
        hf_to_gguf(broken, work / "out.gguf", "f16")
    assert sorted(p.name for p in work.iterdir()) == ["broken"]  # no output, no partial file


def test_refuses_unknown_pre_tokenizer_and_existing_output(tiny_hf: Path, tmp_path: Path) -> None:
    odd = tmp_path / "odd"
    odd.mkdir()
    for src in tiny_hf.iterdir():
        (odd / src.name).write_bytes(src.read_bytes())
    data = json.loads((odd / "tokenizer.json").read_text())
    data["pre_tokenizer"] = {"type": "Whitespace"}
    (odd / "tokenizer.json").write_text(json.dumps(data))
    with pytest.raises(ModelError, match="--pre-tokenizer"):
        hf_to_gguf(odd, tmp_path / "odd.gguf")
    existing = tmp_path / "exists.gguf"
    existing.write_text("keep me")
    with pytest.raises(ModelError, match="--force"):
        hf_to_gguf(tiny_hf, existing)
    assert existing.read_text() == "keep me"


def test_cli_converts_and_reports(tiny_hf: Path, tmp_path: Path, run_ilab) -> None:
    """Without --output the GGUF lands in the current directory, named after the input and the type."""
    result = run_ilab("model", "convert", "--model-dir", str(tiny_hf), "--outtype", "q8_0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / f"{tiny_hf.name}-q8_0.gguf"
    assert out.is_file() and f"Wrote {out}" in result.stdout


@pytest.mark.parametrize("case", ["missing", "no-config", "not-gguf", "unsupported-arch", "wrong-direction",
                                  "truncated-gguf"])
def test_cli_bad_inputs(case: str, tiny_hf: Path, tmp_path: Path, run_ilab, smollm_gguf: Path) -> None:
    target = tmp_path / case
    args: tuple[str, ...] = ()
    if case == "no-config":
        target.mkdir()
        (target / "model.safetensors").write_bytes(b"")
    elif case == "not-gguf":
        target = tmp_path / "notes.txt"
        target.write_text("hello")
    elif case == "unsupported-arch":
        target.mkdir()
        (target / "config.json").write_text(json.dumps({"architectures": ["GPT2LMHeadModel"]}))
    elif case == "wrong-direction":
        target, args = tiny_hf, ("--to", "hf")
    elif case == "truncated-gguf":
        target = tmp_path / "cut.gguf"
        with smollm_gguf.open("rb") as src:
            target.write_bytes(src.read(3_000_000))
    result = run_ilab("model", "convert", "-m", str(target), *args, "-o", str(tmp_path / "out"))
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
