"""The HTTP client against the real `ilab model serve` (llama.cpp backend, embedded model) in a subprocess."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from labrador.llm import SamplingParams, get_client

pytestmark = pytest.mark.slow
ILAB = str(Path(sys.executable).with_name("ilab"))


@pytest.fixture
def served_url() -> Iterator[str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([ILAB, "model", "serve", "--port", "0", "--threads", "1"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    try:
        seen = []
        assert proc.stdout is not None
        for line in proc.stdout:  # the server prints its URL once it is ready
            seen.append(line)
            match = re.search(r"(http://127\.0\.0\.1:\d+/v1)", line)
            if match:
                break
        else:
            pytest.fail("ilab model serve exited: " + "".join(seen))
        yield match.group(1)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_chat_and_n_samples_through_ilab_serve(served_url: str) -> None:
    with get_client(None, endpoint_urls=[served_url], timeout=120) as client:
        assert client.model_name == "smollm2-135m-instruct"
        answer = client.chat([{"role": "system", "content": "Answer the question."},
                              {"role": "user", "content": "What is the capital of France?"}],
                             SamplingParams(max_tokens=16))
        assert "Paris" in answer.text and answer.completion_tokens > 0
        samples = client.chat([{"role": "user", "content": "Say hi"}],
                              SamplingParams(max_tokens=6, n=2, temperature=1.0, seed=3))
        assert len(samples.texts) == 2
