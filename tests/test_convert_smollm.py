"""Round trip of the embedded SmolLM2 (GGUF Q4_1) -> Hugging Face -> GGUF, checked by greedy decoding.

What "the same output" can mean here (measured, see docs/convert.md):
* GGUF q4_1 from the round trip is byte-identical to the original tensors, so its greedy text is identical;
* f16 and q8_0 hold the *dequantized* weights, which llama.cpp multiplies without the Q4_1 block arithmetic:
  they agree with transformers' float32 greedy text on the HF directory, and with the original Q4_1 text on
  the first tokens only (17 of 24 with this prompt) - the difference is the original's quantized arithmetic.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from labrador.models.convert import gguf_to_hf, hf_to_gguf

PROMPT = "<|im_start|>user\nWhat is the capital of France? Tell me about it.<|im_end|>\n<|im_start|>assistant\n"
N_TOKENS = 24
pytestmark = pytest.mark.slow


def _greedy_llama_cpp(gguf_path: Path) -> tuple[list[int], list[int]]:
    """(prompt token ids, greedy continuation ids) from llama.cpp."""
    from llama_cpp import Llama

    llm = Llama(model_path=str(gguf_path), n_ctx=128, n_threads=2, verbose=False)
    prompt = llm.tokenize(PROMPT.encode(), add_bos=False, special=True)
    out: list[int] = []
    for token in llm.generate(prompt, temp=0.0, top_k=1):
        out.append(token)
        if len(out) == N_TOKENS:
            break
    llm.close()
    return prompt, out


def _common_prefix(a: list[int], b: list[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def _transformers_agreement(model: Any, prompt: list[int], tokens: list[int]) -> int:
    """How many leading `tokens` transformers' greedy decoding would also pick (one teacher-forced pass:
    greedy decoding reproduces the sequence exactly as far as each argmax equals the next token)."""
    import torch

    with torch.no_grad():
        logits = model(torch.tensor([prompt + tokens])).logits[0]
    picks = logits[len(prompt) - 1: len(prompt) - 1 + len(tokens)].argmax(-1).tolist()
    return _common_prefix(picks, tokens)


@pytest.fixture(scope="module")
def smollm_hf(smollm_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return gguf_to_hf(smollm_gguf, tmp_path_factory.mktemp("rt") / "smollm-hf", dtype="float32")


@pytest.fixture(scope="module")
def hf_model(smollm_hf: Path) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(smollm_hf, dtype=torch.float32).eval()


@pytest.fixture(scope="module")
def original(smollm_gguf: Path) -> tuple[list[int], list[int]]:
    return _greedy_llama_cpp(smollm_gguf)


def test_hf_directory_loads_and_trains(smollm_hf: Path, hf_model: Any, original: tuple[list[int], list[int]]) -> None:
    """Complete directory; transformers loads it (no GGUF leftovers) and takes a training step."""
    import copy

    import torch
    from transformers import AutoTokenizer

    names = {p.name for p in smollm_hf.iterdir()}
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
            "tokenizer_config.json", "chat_template.jinja"} <= names
    config = json.loads((smollm_hf / "config.json").read_text())
    assert "quantization_config" not in config and config["tie_word_embeddings"] is True
    tokenizer_json = json.loads((smollm_hf / "tokenizer.json").read_text())
    assert [p["type"] for p in tokenizer_json["pre_tokenizer"]["pretokenizers"]] == ["Digits", "ByteLevel"]
    tokenizer = AutoTokenizer.from_pretrained(smollm_hf)
    assert tokenizer(PROMPT).input_ids == original[0]  # same prompt ids as llama.cpp's tokenizer
    assert tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False).startswith("<|im_start|>")
    # transformers float32 vs llama.cpp Q4_1: same start, then the original's quantized arithmetic takes over.
    assert _transformers_agreement(hf_model, *original) >= 12

    model = copy.deepcopy(hf_model).train()
    batch = tokenizer("Paris is the capital of France.", return_tensors="pt").input_ids
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    loss = model(batch, labels=batch).loss
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        after = model(batch, labels=batch).loss
    assert torch.isfinite(loss) and after < loss


def test_round_trip_q4_1_is_exact(smollm_gguf: Path, smollm_hf: Path, tmp_path: Path,
                                  original: tuple[list[int], list[int]]) -> None:
    from labrador.models.gguf_meta import GgufFile

    out = hf_to_gguf(smollm_hf, tmp_path / "rt-q4_1.gguf", "q4_1")
    with GgufFile(smollm_gguf) as before, GgufFile(out) as after:
        assert sorted(after.tensors) == sorted(before.tensors)
        for name in before.tensors:  # every quantized block identical: a lossless round trip
            assert after.tensors[name].qtype == before.tensors[name].qtype
            assert after.raw(name).tobytes() == before.raw(name).tobytes(), name
        for key in ("tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges",
                    "tokenizer.ggml.pre", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                    "tokenizer.ggml.add_bos_token", "tokenizer.chat_template", "llama.rope.freq_base"):
            assert after.metadata[key] == before.metadata[key], key
    assert _greedy_llama_cpp(out) == original


@pytest.mark.parametrize("outtype", ["f16", "q8_0"])
def test_round_trip_dequantized_matches_transformers(smollm_hf: Path, hf_model: Any, tmp_path: Path, outtype: str,
                                                     original: tuple[list[int], list[int]]) -> None:
    out = hf_to_gguf(smollm_hf, tmp_path / f"rt-{outtype}.gguf", outtype)
    prompt, tokens = _greedy_llama_cpp(out)
    assert prompt == original[0]
    assert _transformers_agreement(hf_model, prompt, tokens) == N_TOKENS  # transformers' greedy text, all of it
    assert _common_prefix(tokens, original[1]) >= 12
