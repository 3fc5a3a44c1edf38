"""Real llama.cpp inference on the embedded SmolLM2 GGUF, through `labrador.llm.get_client`."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from labrador.errors import LabradorError
from labrador.llm import Completion, LLMClient, SamplingParams, get_client
from labrador.llm.llama_cpp import LlamaCppClient

pytestmark = pytest.mark.slow

QUESTION = [{"role": "system", "content": "Answer the question."},
            {"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def client() -> Iterator[LlamaCppClient]:
    c = get_client(None, n_ctx=512)
    assert isinstance(c, LlamaCppClient)
    yield c
    c.close()


def test_default_model_is_embedded_llama_cpp(client: LlamaCppClient) -> None:
    assert isinstance(client, LLMClient)
    assert client.model_name == "smollm2-135m-instruct"
    assert client.context_length == 512


def test_greedy_chat_answers_paris(client: LlamaCppClient) -> None:
    result = client.chat(QUESTION, SamplingParams(max_tokens=24))
    assert "Paris" in result.text
    assert result.prompt_tokens > 10 and 0 < result.completion_tokens <= 24
    assert result.finish_reasons == ["stop"]
    # greedy is deterministic
    assert client.chat(QUESTION, SamplingParams(max_tokens=24)).text == result.text


def test_n_samples_differ_and_are_reproducible(client: LlamaCppClient) -> None:
    messages = [{"role": "user", "content": "Write one sentence about dogs."}]
    params = SamplingParams(temperature=1.0, max_tokens=12, n=3, seed=7)
    first = client.chat(messages, params)
    assert len(first.texts) == 3 and len(set(first.texts)) > 1
    assert client.chat(messages, params).texts == first.texts
    assert len(first.finish_reasons) == 3


def test_stop_sequence_and_complete(client: LlamaCppClient) -> None:
    result = client.complete("1, 2, 3, 4,", SamplingParams(max_tokens=20, stop=(" 7",)))
    assert " 7" not in result.text and result.text.startswith(" 5")


def test_loglikelihoods_match_full_logits_reference(client: LlamaCppClient, smollm_gguf: Path) -> None:
    import llama_cpp

    context, options = "The capital of France is", [" Paris", " London", " a banana split"]
    scores = client.loglikelihoods(context, options)
    assert scores[0] > scores[1] > scores[2]
    # reference: llama-cpp-python with logits for every position, evaluated from scratch per option
    ref = llama_cpp.Llama(model_path=str(smollm_gguf), n_ctx=64, logits_all=True, n_threads=1, verbose=False)
    try:
        for option, score in zip(options, scores, strict=True):
            ctx_tokens = ref.tokenize(context.encode(), add_bos=True, special=True)
            whole = ref.tokenize((context + option).encode(), add_bos=True, special=True)
            ref.reset()
            ref.eval(whole)
            logits = ref.scores[: len(whole)].astype(np.float64)
            logprobs = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
                - logits.max(-1, keepdims=True)
            expected = sum(logprobs[i - 1, whole[i]] for i in range(len(ctx_tokens), len(whole)))
            assert score == pytest.approx(expected, abs=1e-3)
    finally:
        ref.close()
    # generation still works after the low-level decode reused the context
    assert "Paris" in client.chat(QUESTION, SamplingParams(max_tokens=24)).text


def test_async_and_threads_share_one_worker(client: LlamaCppClient) -> None:
    before = client.requests
    params = SamplingParams(max_tokens=6)

    async def many() -> list[Completion]:
        return await asyncio.gather(*[client.achat([{"role": "user", "content": f"Say {i}"}], params)
                                      for i in range(3)])

    results: list[Completion] = []
    thread = threading.Thread(target=lambda: results.append(client.complete("Hello", params)))
    thread.start()
    results.extend(asyncio.run(many()))
    thread.join()
    assert len(results) == 4 and all(r.texts for r in results)
    assert client.requests == before + 4
    assert client.busy_seconds > 0 and client.prompt_tokens > 0 and client.completion_tokens > 0


def test_prompt_longer_than_context_is_a_clear_error(client: LlamaCppClient) -> None:
    with pytest.raises(LabradorError, match="context window of 512"):
        client.complete("word " * 600, SamplingParams(max_tokens=4))


def test_chat_template_override(smollm_gguf: Path, tmp_path: Path) -> None:
    template = tmp_path / "template.jinja"
    template.write_text("{% for m in messages %}### {{ m['role'] }}: {{ m['content'] }}\n{% endfor %}### assistant:")
    with get_client(str(smollm_gguf), n_ctx=128, chat_template=str(template)) as custom:
        tokens = custom.chat_prompt_tokens([{"role": "user", "content": "hi"}])
        assert custom._llm.detokenize(tokens).decode() == "### user: hi\n### assistant:"
        assert custom.chat([{"role": "user", "content": "hi"}], SamplingParams(max_tokens=3)).completion_tokens > 0
    with pytest.raises(LabradorError, match="neither a Jinja template nor an existing file"):
        get_client(str(smollm_gguf), chat_template="no-such-template.jinja")
