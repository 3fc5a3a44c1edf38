"""transformers CPU backend on a tiny real Llama checkpoint (random weights, trained BPE tokenizer, ChatML).

SmolLM2 itself is not used here: transformers needs ~90 s to de-quantize its GGUF on the CI machine.
`build_tiny_hf_model` is also used by tests/test_models_*.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from labrador.llm import SamplingParams, get_client
from labrador.llm.templates import CHATML_TEMPLATE
from labrador.llm.transformers_backend import TransformersClient

pytestmark = pytest.mark.slow

CORPUS = ["The capital of France is Paris.", "Dogs are loyal animals.", "What is the capital of Italy? Rome.",
          "One, two, three, four, five.", "Answer the question briefly and clearly."] * 20


def build_tiny_hf_model(directory: Path) -> Path:
    """Save a 2-layer Llama with a 300-token BPE tokenizer and a ChatML template into `directory`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=300, special_tokens=specials,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="<|im_end|>",
                                        unk_token="<unk>", pad_token="</s>")
    tokenizer.chat_template = CHATML_TEMPLATE
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_hf_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="module")
def client(tiny_dir: Path) -> Iterator[TransformersClient]:
    c = get_client(str(tiny_dir))
    assert isinstance(c, TransformersClient)
    yield c
    c.close()


def test_hf_directory_resolves_to_transformers(client: TransformersClient, tiny_dir: Path) -> None:
    assert client.model_name == tiny_dir.name
    assert client.context_length == 256


def test_greedy_is_deterministic_and_bounded(client: TransformersClient) -> None:
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    first = client.chat(messages, SamplingParams(max_tokens=8, n=2))
    assert first.texts[0] == first.texts[1] == client.chat(messages, SamplingParams(max_tokens=8)).text
    assert 0 < first.completion_tokens <= 16 and first.prompt_tokens > 5


def test_sampling_n_reproducible_with_seed(client: TransformersClient) -> None:
    params = SamplingParams(temperature=1.5, max_tokens=8, n=3, seed=3)
    first = client.complete("Dogs are", params)
    assert len(first.texts) == 3 and len(set(first.texts)) > 1
    assert client.complete("Dogs are", params).texts == first.texts

    async def again() -> list[str]:
        return (await client.achat([{"role": "user", "content": "hi"}], SamplingParams(max_tokens=4))).texts

    assert len(asyncio.run(again())) == 1
    assert client.requests >= 3 and client.busy_seconds > 0


def test_loglikelihoods_match_incremental_decoding(client: TransformersClient) -> None:
    import torch

    context, options = "The capital of France is", [" Paris.", " Rome."]
    scores = client.loglikelihoods(context, options)
    tok, model = client._tokenizer, client._model
    for option, score in zip(options, scores, strict=True):
        ctx_ids = tok(context)["input_ids"]
        cont_ids = tok(context + option)["input_ids"][len(ctx_ids):]
        with torch.inference_mode():  # one token at a time through the KV cache: an independent code path
            out = model(torch.tensor([ctx_ids]), use_cache=True)
            total, past, logits = 0.0, out.past_key_values, out.logits[0, -1]
            for token in cont_ids:
                total += float(torch.log_softmax(logits.double(), -1)[token])
                out = model(torch.tensor([[token]]), past_key_values=past, use_cache=True)
                past, logits = out.past_key_values, out.logits[0, -1]
        assert score == pytest.approx(total, abs=1e-4)


def test_stop_sequences_cut_text(client: TransformersClient) -> None:
    free = client.complete("One, two,", SamplingParams(max_tokens=12)).text
    assert len(free) > 2
    stop = free[1:3]
    cut = client.complete("One, two,", SamplingParams(max_tokens=12, stop=(stop,)))
    assert cut.text == free[: free.find(stop)] and cut.finish_reasons == ["stop"]
