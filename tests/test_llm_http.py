"""OpenAI-compatible HTTP backend against real HTTP servers on 127.0.0.1 (canned OpenAI JSON answers)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from labrador.errors import EndpointError, LabradorError
from labrador.llm import SamplingParams, get_client
from labrador.llm.openai_http import OpenAIHTTPClient, normalize_url


@dataclass
class Behaviour:
    """What the fake server does: `script` is consumed one action per POST, then `default` applies."""

    script: list[str] = field(default_factory=list)
    default: str = "ok"
    delay: float = 0.0
    honour_n: bool = True
    logprobs: bool = True
    requests: list[dict[str, Any]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _make_handler(b: Behaviour, name: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:
            self._json(200, {"object": "list", "data": [{"id": f"model-{name}", "object": "model"}]})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with b.lock:
                b.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
                action = b.script.pop(0) if b.script else b.default
                b.in_flight += 1
                b.max_in_flight = max(b.max_in_flight, b.in_flight)
            try:
                time.sleep(b.delay)
                if action == "hang":
                    time.sleep(3)
                    return
                if action in ("500", "503"):
                    return self._json(int(action), {"error": {"message": "overloaded\nplease wait"}})
                if action == "429":
                    return self._json(429, {"error": "slow down"}, {"Retry-After": "0"})
                if action == "401":
                    return self._json(401, {"error": "bad key"})
                self._json(200, self._answer(body))
            finally:
                with b.lock:
                    b.in_flight -= 1

        def _answer(self, body: dict[str, Any]) -> dict[str, Any]:
            n = body.get("n", 1) if b.honour_n else 1
            if self.path.endswith("/chat/completions"):
                choices = [{"index": i, "message": {"role": "assistant", "content": f"{name} says {i} seed "
                                                    f"{body.get('seed')}"}, "finish_reason": "stop"}
                           for i in range(n)]
                return {"id": "x", "model": body["model"], "choices": choices,
                        "usage": {"prompt_tokens": 5, "completion_tokens": 3 * n}}
            if body.get("echo"):
                # one "token" per character of the prompt, logprob -0.5 each; the first has no logprob
                prompt = body["prompt"]
                offsets = list(range(len(prompt) + 1))
                values = [None] + [-0.5] * len(prompt)
                logprobs = {"text_offset": offsets, "token_logprobs": values, "tokens": list(prompt) + ["!"]}
                return {"choices": [{"text": prompt + "!", "logprobs": logprobs if b.logprobs else None,
                                     "finish_reason": "length"}]}
            return {"choices": [{"text": f" completion of {body['prompt']!r}", "finish_reason": "length"}] * n,
                    "usage": {"prompt_tokens": 2, "completion_tokens": 4}}

    return Handler


@pytest.fixture
def servers() -> Iterator[list[tuple[str, Behaviour]]]:
    started: list[tuple[ThreadingHTTPServer, str, Behaviour]] = []
    for name in ("a", "b"):
        behaviour = Behaviour()
        server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(behaviour, name))
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        started.append((server, f"http://127.0.0.1:{server.server_address[1]}/v1", behaviour))
    yield [(url, b) for _, url, b in started]
    for server, _, _ in started:
        server.shutdown()
        server.server_close()


def _client(urls: list[str], model: str | None = None, **options: Any) -> OpenAIHTTPClient:
    options = {"backoff": 0.01, "max_retries": 3, "timeout": 5.0, **options}
    client = get_client(model, endpoint_urls=urls, **options)
    assert isinstance(client, OpenAIHTTPClient)
    return client


def test_chat_model_from_v1_models_bearer_and_n(servers: list[tuple[str, Behaviour]]) -> None:
    url, b = servers[0]
    with get_client(None, endpoint_urls=[url], api_key="sekret") as client:
        assert client.model_name == "model-a"
        result = client.chat([{"role": "user", "content": "hi"}], SamplingParams(n=3, seed=5, stop=("x",)))
    assert result.texts == ["a says 0 seed 5", "a says 1 seed 5", "a says 2 seed 5"]
    assert (result.prompt_tokens, result.completion_tokens, result.model) == (5, 9, "model-a")
    sent = b.requests[0]
    assert sent["auth"] == "Bearer sekret" and sent["path"] == "/v1/chat/completions"
    assert sent["body"]["n"] == 3 and sent["body"]["stop"] == ["x"] and sent["body"]["model"] == "model-a"


def test_server_ignoring_n_gets_separate_requests_with_new_seeds(servers: list[tuple[str, Behaviour]]) -> None:
    url, b = servers[0]
    b.honour_n = False
    client = _client([url], model="named")
    result = client.chat([{"role": "user", "content": "hi"}], SamplingParams(n=3, seed=10, temperature=1.0))
    assert result.texts == ["a says 0 seed 10", "a says 0 seed 11", "a says 0 seed 12"]
    assert [r["body"]["model"] for r in b.requests] == ["named"] * 3
    assert client.requests == 3 and client.completion_tokens == 9


def test_retries_5xx_and_429_then_succeeds(servers: list[tuple[str, Behaviour]]) -> None:
    url, b = servers[0]
    b.script = ["500", "429", "503"]
    client = _client([url], model="m")
    assert client.chat([{"role": "user", "content": "hi"}]).text == "a says 0 seed None"
    assert len(b.requests) == 4


def test_last_retry_raises_one_line_endpoint_error(servers: list[tuple[str, Behaviour]]) -> None:
    url, b = servers[0]
    b.default = "500"
    client = _client([url], model="m", max_retries=2)
    with pytest.raises(EndpointError) as info:
        client.chat([{"role": "user", "content": "hi"}])
    message = str(info.value)
    assert url in message and "HTTP 500" in message and "after 3 attempts" in message
    assert "\n" not in message
    assert len(b.requests) == 3


def test_client_errors_are_not_retried(servers: list[tuple[str, Behaviour]]) -> None:
    url, b = servers[0]
    b.default = "401"
    with pytest.raises(EndpointError, match=r"HTTP 401 \(check --api-key\)"):
        _client([url], model="m").chat([{"role": "user", "content": "hi"}])
    assert len(b.requests) == 1


def test_timeout_is_retried_then_reported(servers: list[tuple[str, Behaviour]]) -> None:
    url, b = servers[0]
    b.script = ["hang"]
    client = _client([url], model="m", timeout=0.3)
    assert client.chat([{"role": "user", "content": "hi"}]).texts  # second attempt answers
    b.default = "hang"
    with pytest.raises(EndpointError, match="timeout"):
        _client([url], model="m", timeout=0.3, max_retries=1).chat([{"role": "user", "content": "hi"}])


def test_unreachable_endpoint_names_url() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    with pytest.raises(EndpointError) as info:
        _client([url], model="m", max_retries=1).chat([{"role": "user", "content": "hi"}])
    assert str(info.value).startswith(f"Endpoint {url} failed after 2 attempts: ConnectError")


def test_load_spreads_and_respects_per_endpoint_limit(servers: list[tuple[str, Behaviour]]) -> None:
    (url_a, a), (url_b, b) = servers
    a.delay = b.delay = 0.15
    client = _client([url_a, url_b], model="m", max_concurrency=2)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: client.chat([{"role": "user", "content": str(i)}]), range(12)))
    assert len(results) == 12
    assert len(a.requests) >= 4 and len(b.requests) >= 4 and len(a.requests) + len(b.requests) == 12
    assert a.max_in_flight <= 2 and b.max_in_flight <= 2
    assert client.busy_seconds > 0


def test_async_chat_spreads_and_limits(servers: list[tuple[str, Behaviour]]) -> None:
    (url_a, a), (url_b, b) = servers
    a.delay = b.delay = 0.1
    client = _client([url_a, url_b], max_concurrency=3)

    async def run() -> list[str]:
        results = await asyncio.gather(*[client.achat([{"role": "user", "content": str(i)}]) for i in range(10)])
        await client.aclose()
        return [r.text for r in results]

    texts = asyncio.run(run())
    assert len(texts) == 10 and {t.split()[0] for t in texts} == {"a", "b"}
    assert a.max_in_flight <= 3 and b.max_in_flight <= 3


def test_complete_and_loglikelihoods(servers: list[tuple[str, Behaviour]]) -> None:
    url, b = servers[0]
    client = _client([url], model="m")
    assert client.complete("Once", SamplingParams(max_tokens=4)).text == " completion of 'Once'"
    assert b.requests[0]["path"] == "/v1/completions"
    # the fake scores -0.5 per character; the context's trailing space moves into the continuation
    assert client.loglikelihoods("The answer is ", ["yes", "no way"]) == [-2.0, -3.5]
    assert b.requests[-1]["body"]["echo"] is True
    b.logprobs = False
    with pytest.raises(LabradorError, match="does not return prompt log-probabilities"):
        client.loglikelihoods("The answer is", [" yes"])


def test_bad_url_and_unknown_option() -> None:
    assert normalize_url("http://h:8000/") == "http://h:8000/v1"
    assert normalize_url("http://h:8000/v1/") == "http://h:8000/v1"
    with pytest.raises(LabradorError, match="must start with http"):
        get_client(None, endpoint_urls=["localhost:8000"])
    with pytest.raises(TypeError, match="unknown option"):
        get_client(None, endpoint_urls=["http://h"], temprature=1)
