"""`ilab model serve` end to end: a real server on 127.0.0.1 serving SmolLM2, driven by the official openai client.

One server per module (started with `--port 0` in a subprocess, as a user would); the last test stops it with
SIGTERM and checks the exit status.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest

ILAB = str(Path(sys.executable).with_name("ilab"))
API_KEY = "test-key-123"
QUESTION = [{"role": "system", "content": "You are a helpful AI assistant. Answer briefly and accurately."},
            {"role": "user", "content": "What is the capital of France?"}]

pytestmark = pytest.mark.slow


@dataclass
class Server:
    process: subprocess.Popen[str]
    url: str  # OpenAI base URL, .../v1
    env: dict[str, str]

    @property
    def root(self) -> str:
        return self.url.removesuffix("/v1")

    def client(self, api_key: str = API_KEY) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url, api_key=api_key, max_retries=0, timeout=120)


def isolated_env(home: Path) -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", NO_COLOR="1")
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"), ("XDG_CACHE_HOME", "cache")):
        (home / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(home / sub)
    env.pop("LABRADOR_CONFIG", None)
    env.pop("LABRADOR_API_KEY", None)
    return env


def read_line(stream, timeout: float) -> str:
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if ready else ""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = isolated_env(tmp_path_factory.mktemp("serve-home"))
    process = subprocess.Popen([ILAB, "model", "serve", "--port", "0", "--threads", "1", "--api-key", API_KEY,
                                "--max-body-mb", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env)
    line = read_line(process.stdout, 120)
    if " at http://" not in line:
        process.kill()
        pytest.fail(f"the server did not start: {line!r} {process.stderr.read()}")
    url = line.split(" at ", 1)[1].split()[0]
    yield Server(process, url, env)
    if process.poll() is None:
        process.kill()
        process.wait()


def test_models_and_health(server: Server) -> None:
    models = server.client().models.list()
    assert [m.id for m in models.data] == ["smollm2-135m-instruct"]
    reply = httpx.get(server.root + "/health", headers={"Authorization": f"Bearer {API_KEY}"})
    assert reply.status_code == 200 and reply.json()["status"] == "ok"
    assert server.url.startswith("http://127.0.0.1:")  # the default bind address


def test_chat_completion(server: Server) -> None:
    reply = server.client().chat.completions.create(model="anything", messages=QUESTION, temperature=0,
                                                    max_tokens=24)
    assert "Paris" in reply.choices[0].message.content
    assert reply.choices[0].finish_reason in ("stop", "length")
    assert reply.model == "smollm2-135m-instruct"
    assert reply.usage.prompt_tokens > 10 and reply.usage.completion_tokens > 0


def test_chat_streaming_matches_non_streaming(server: Server) -> None:
    client = server.client()
    whole = client.chat.completions.create(model="m", messages=QUESTION, temperature=0, max_tokens=24)
    stream = client.chat.completions.create(model="m", messages=QUESTION, temperature=0, max_tokens=24,
                                            stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) > 3  # token by token, not one final blob
    assert "".join(pieces) == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == len(pieces)


def test_completions(server: Server) -> None:
    client = server.client()
    reply = client.completions.create(model="m", prompt="The capital of France is", temperature=0, max_tokens=6)
    assert "Paris" in reply.choices[0].text
    streamed = client.completions.create(model="m", prompt="The capital of France is", temperature=0,
                                         max_tokens=6, stream=True)
    assert "".join(c.choices[0].text for c in streamed) == reply.choices[0].text


def test_prompt_logprobs_for_likelihood_scoring(server: Server, smollm_gguf: Path) -> None:
    """The llm package's endpoint client scores continuations through echo+logprobs; the figures match the
    in-process llama.cpp client on the same file."""
    from labrador.llm import get_client

    remote = get_client(endpoint_urls=[server.url], api_key=API_KEY)
    local = get_client(str(smollm_gguf), n_threads=1)
    try:
        context, options = "The capital of France is", [" Paris", " London", " a large city"]
        over_http, in_process = remote.loglikelihoods(context, options), local.loglikelihoods(context, options)
    finally:
        remote.close()
        local.close()
    assert over_http[0] > over_http[1]
    assert over_http == pytest.approx(in_process, abs=0.05)
    echoed = server.client().completions.create(model="m", prompt="Hello there", max_tokens=0, echo=True,
                                                logprobs=2)
    choice = echoed.choices[0]
    assert choice.text == "Hello there" and "".join(choice.logprobs.tokens) == "Hello there"
    assert choice.logprobs.token_logprobs[0] is None and len(choice.logprobs.top_logprobs[1]) == 2


def test_n_samples_and_stop(server: Server) -> None:
    reply = server.client().chat.completions.create(model="m", messages=QUESTION, temperature=0.9, max_tokens=8,
                                                    n=2, seed=7)
    assert [c.index for c in reply.choices] == [0, 1]
    stopped = server.client().completions.create(model="m", prompt="1, 2, 3, 4,", temperature=0, max_tokens=20,
                                                 stop=[" 6"])
    assert " 6" not in stopped.choices[0].text and stopped.choices[0].finish_reason == "stop"


def test_api_key_enforced_on_every_route(server: Server) -> None:
    with pytest.raises(openai.AuthenticationError):
        server.client(api_key="wrong").models.list()
    for method, path in (("GET", "/health"), ("GET", "/v1/models"), ("POST", "/v1/chat/completions"),
                         ("POST", "/v1/completions"), ("GET", "/no/such/route")):
        reply = httpx.request(method, server.root + path, json={})
        assert reply.status_code == 401, path
        assert reply.json()["error"]["code"] == "invalid_api_key"


def test_bad_requests_are_refused_and_the_server_keeps_serving(server: Server) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    url = server.url + "/chat/completions"
    big = json.dumps({"messages": [{"role": "user", "content": "x" * (3 * 1024 * 1024 // 2)}]})
    too_large = httpx.post(url, content=big, headers=headers)
    assert too_large.status_code == 413 and too_large.json()["error"]["code"] == "request_too_large"
    bad_json = httpx.post(url, content=b'{"messages": [', headers=headers)
    assert bad_json.status_code == 400 and bad_json.json()["error"]["code"] == "invalid_json"
    with pytest.raises(openai.BadRequestError, match="temperature"):
        server.client().chat.completions.create(model="m", messages=QUESTION, temperature=7)
    with pytest.raises(openai.BadRequestError, match="messages"):
        server.client().chat.completions.create(model="m", messages=[])
    assert httpx.get(server.url + "/nothing", headers=headers).status_code == 404
    reply = server.client().chat.completions.create(model="m", messages=QUESTION, temperature=0, max_tokens=8)
    assert reply.choices[0].message.content


def test_four_concurrent_clients_all_succeed(server: Server) -> None:
    topics = ["France", "Italy", "Spain", "Germany"]

    def ask(i: int) -> str:
        messages = [{"role": "user", "content": f"Name one city in {topics[i]}."}]
        client = server.client()
        if i % 2:  # half of them stream, so plain and streamed requests share the queue
            stream = client.chat.completions.create(model="m", messages=messages, temperature=0, max_tokens=12,
                                                    stream=True)
            return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        return client.chat.completions.create(model="m", messages=messages, temperature=0,
                                              max_tokens=12).choices[0].message.content

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(ask, range(4)))
    assert all(answer.strip() for answer in answers)


def test_chat_command_against_the_server(server: Server) -> None:
    result = subprocess.run([ILAB, "model", "chat", "--endpoint-url", server.url, "--api-key", API_KEY, "--greedy",
                             "--max-tokens", "24", "-qq", "What is the capital of France?"],
                            capture_output=True, text=True, env=server.env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout


def test_chat_streamer_over_http(server: Server) -> None:
    """The terminal chat's SSE reader: token pieces as they come, and a context overflow reported as such."""
    from labrador.chat.stream import Streamer
    from labrador.llm import get_client
    from labrador.llm.base import ContextOverflow, SamplingParams

    client = get_client("m", endpoint_urls=[server.url], api_key=API_KEY)
    try:
        streamer = Streamer(client)
        params = SamplingParams(temperature=0.0, max_tokens=16)
        pieces = list(streamer.stream(QUESTION, params))
        assert len(pieces) > 3 and "".join(pieces) == client.chat(QUESTION, params).text
        with pytest.raises(ContextOverflow, match="context window"):
            list(streamer.stream([{"role": "user", "content": "word " * 6000}], params))
    finally:
        client.close()


def test_sigterm_stops_cleanly(server: Server) -> None:
    """Last test of the module: it stops the shared server while a long answer is being streamed."""
    stream = server.client().completions.create(model="m", prompt="Once upon a time", temperature=0,
                                                max_tokens=3000, stream=True)
    pieces = iter(stream)
    assert next(pieces).choices[0].text is not None  # generation is under way
    server.process.send_signal(signal.SIGTERM)
    with pytest.raises(openai.APIError, match="shutting down"):
        for _ in pieces:
            pass
    code = server.process.wait(timeout=60)
    out = server.process.stdout.read()
    assert code == 0, server.process.stderr.read()
    assert "Server stopped." in out


def test_sigint_stops_an_idle_server_cleanly(tmp_path: Path) -> None:
    """Ctrl-C in the terminal: SIGINT stops the server with exit status 0, no traceback."""
    process = subprocess.Popen([ILAB, "model", "serve", "--port", "0", "--threads", "1"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=isolated_env(tmp_path))
    try:
        line = read_line(process.stdout, 120)
        assert " at http://127.0.0.1:" in line, process.stderr.read() if process.poll() is not None else line
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=60)
        out, err = process.communicate()
        assert code == 0, err
        assert "Server stopped." in out
        assert "Traceback" not in err
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
