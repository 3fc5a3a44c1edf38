"""`ilab model serve` on a Hugging Face directory without a GPU: the transformers CPU backend.

The model is a tiny randomly initialised Llama with a small byte-level BPE tokenizer and a ChatML template,
written with save_pretrained: the real loading, templating, generation and streaming code paths run, in
seconds instead of the minutes a dequantized SmolLM2 takes to load here. Its text is noise; the tests check
the protocol (shapes, token limits, stop strings, streaming == non-streaming under greedy decoding).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

ILAB = str(Path(sys.executable).with_name("ilab"))

pytestmark = pytest.mark.slow

CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
          "'<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


def write_tiny_model(directory: Path) -> None:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(["The capital of France is Paris. What is the capital of Italy? Rome."] * 20,
                                  trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>", bos_token="<|endoftext|>",
                                   pad_token="<|endoftext|>")
    fast.chat_template = CHATML
    fast.save_pretrained(directory)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256,
                         eos_token_id=fast.eos_token_id, bos_token_id=fast.bos_token_id,
                         pad_token_id=fast.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(directory)


@pytest.fixture(scope="module")
def hf_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen[str], str]]:
    model_dir = tmp_path_factory.mktemp("tiny-llama")
    write_tiny_model(model_dir)
    home = tmp_path_factory.mktemp("hf-home")
    env = dict(os.environ, HF_HUB_OFFLINE="1", XDG_CONFIG_HOME=str(home / "config"), XDG_DATA_HOME=str(home / "data"),
               XDG_CACHE_HOME=str(home / "cache"))
    env.pop("LABRADOR_CONFIG", None)
    process = subprocess.Popen([ILAB, "model", "serve", "-m", str(model_dir), "--port", "0", "--threads", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    ready, _, _ = select.select([process.stdout], [], [], 180)
    line = process.stdout.readline() if ready else ""
    if "backend transformers" not in line:
        process.kill()
        pytest.fail(f"the server did not start: {line!r} {process.stderr.read()}")
    yield process, line.split(" at ", 1)[1].split()[0]
    if process.poll() is None:
        process.kill()
        process.wait()


def test_transformers_backend_chat_stream_and_completions(hf_server: tuple[subprocess.Popen[str], str]) -> None:
    process, url = hf_server
    client = openai.OpenAI(base_url=url, api_key="none", max_retries=0, timeout=120)
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    whole = client.chat.completions.create(model="m", messages=messages, temperature=0, max_tokens=8)
    assert whole.usage.completion_tokens <= 8 and whole.choices[0].finish_reason in ("stop", "length")
    chunks = list(client.chat.completions.create(model="m", messages=messages, temperature=0, max_tokens=8,
                                                 stream=True, stream_options={"include_usage": True}))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == whole.choices[0].message.content
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    text = client.completions.create(model="m", prompt="The capital", temperature=0, max_tokens=6)
    assert text.usage.completion_tokens <= 6
    if text.choices[0].text[1:3]:  # a stop string taken from the greedy output itself must cut it there
        stop = text.choices[0].text[1:3]
        cut = client.completions.create(model="m", prompt="The capital", temperature=0, max_tokens=6, stop=[stop])
        assert cut.choices[0].text == text.choices[0].text[:text.choices[0].text.find(stop)]
    sampled = client.chat.completions.create(model="m", messages=messages, temperature=1.0, max_tokens=4, n=2,
                                             seed=1)
    assert len(sampled.choices) == 2

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
