"""Unit tests of the server's parts that need no model: request parsing, stop handling, backend choice, vLLM."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from labrador.errors import ModelError
from labrador.llm.factory import choose_backend
from labrador.llm.transformers_backend import StopText
from labrador.llm.vllm import VLLM_MODULE, build_vllm_command, run_vllm
from labrador.serve.protocol import RequestError, parse_request
from labrador.serve.server import base_url

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


def test_parse_chat_request_defaults_and_fields() -> None:
    req = parse_request({**CHAT, "max_tokens": 5, "stop": "x", "seed": 3, "top_k": 7}, chat=True)
    assert (req.max_tokens, req.stop, req.seed, req.temperature, req.n) == (5, ["x"], 3, 1.0, 1)
    assert req.extra == {"top_k": 7}
    parts = parse_request({"messages": [{"role": "developer", "content": [{"type": "text", "text": "a"},
                                                                         {"type": "text", "text": "b"}]}]},
                          chat=True)
    assert parts.messages == [{"role": "system", "content": "ab"}]
    assert parse_request({"prompt": ["one"], "max_completion_tokens": 2}, chat=False).prompt == "one"


@pytest.mark.parametrize(("body", "param"), [
    ({**CHAT, "temperature": 3}, "temperature"),
    ({**CHAT, "temperature": "hot"}, "temperature"),
    ({**CHAT, "max_tokens": 0}, "max_tokens"),
    ({**CHAT, "stop": [1]}, "stop"),
    ({**CHAT, "stream": "yes"}, "stream"),
    ({**CHAT, "stream": True, "n": 2}, "n"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "messages[0].content"),
])
def test_parse_request_names_the_bad_field(body: dict, param: str) -> None:
    with pytest.raises(RequestError) as err:
        parse_request(body, chat=True)
    assert err.value.status == 400 and err.value.param == param
    assert err.value.body()["error"]["type"] == "invalid_request_error"


def test_parse_request_refuses_non_objects_and_missing_prompt() -> None:
    with pytest.raises(RequestError):
        parse_request([1, 2], chat=True)
    with pytest.raises(RequestError, match="prompt"):
        parse_request({"prompt": 5}, chat=False)


def test_stop_text_cuts_across_pieces_and_holds_back_prefixes() -> None:
    sent: list[str] = []
    stops = StopText(["END"], sent.append)
    for piece in ["Hello E", "N", "D world"]:
        stops.feed(piece)
    assert stops.finish() == "Hello " and "".join(sent) == "Hello " and stops.hit
    plain: list[str] = []
    free = StopText([], plain.append)
    free.feed("a")
    free.feed("b")
    assert plain == ["a", "b"] and free.finish() == "ab"


def test_choose_backend(tmp_path: Path, smollm_gguf: Path) -> None:
    hf_dir = tmp_path / "hf"
    hf_dir.mkdir()
    """The server picks its engine with the same rule as `get_client`."""
    assert choose_backend("gguf", smollm_gguf, "auto") == "llama-cpp"
    assert choose_backend("hf", hf_dir, "auto") == "transformers"  # no GPU or vllm on this machine
    with pytest.raises(ModelError, match="GGUF"):
        choose_backend("hf", hf_dir, "llama-cpp")
    with pytest.raises(ModelError, match="only the llama-cpp backend"):
        choose_backend("gguf", smollm_gguf, "vllm")
    with pytest.raises(ModelError, match="needs the `vllm` package"):
        choose_backend("hf", hf_dir, "vllm")


def test_build_vllm_command_passes_backend_args_last(tmp_path: Path) -> None:
    command = build_vllm_command(tmp_path / "ckpt", host="127.0.0.1", port=8123, served_name="granite",
                                 max_ctx_size=4096, api_key="k", chat_template=tmp_path / "t.jinja",
                                 backend_args=["--tensor-parallel-size", "2", "--max-model-len", "8192"],
                                 python="/py")
    assert command[:3] == ["/py", "-m", VLLM_MODULE]
    pairs = dict(zip(command[3:-4:2], command[4:-4:2], strict=True))
    assert pairs == {"--model": str(tmp_path / "ckpt"), "--host": "127.0.0.1", "--port": "8123",
                     "--served-model-name": "granite", "--max-model-len": "4096", "--api-key": "k",
                     "--chat-template": str(tmp_path / "t.jinja")}
    assert command[-4:] == ["--tensor-parallel-size", "2", "--max-model-len", "8192"]  # last wins in argparse
    bare = build_vllm_command(Path("/m"), host="0.0.0.0", port=1, served_name="m", max_ctx_size=None)
    assert "--api-key" not in bare and "--max-model-len" not in bare


def test_run_vllm_forwards_sigterm_and_reports_a_clean_stop() -> None:
    """A stand-in child (vLLM is not installed here): SIGTERM to us reaches it, and that counts as a clean stop."""
    before = signal.getsignal(signal.SIGTERM)
    child = [sys.executable, "-c", "import time; time.sleep(60)"]
    assert run_vllm(child, on_start=lambda: os.kill(os.getpid(), signal.SIGTERM)) == 0
    assert signal.getsignal(signal.SIGTERM) == before  # our own handler is put back
    assert run_vllm([sys.executable, "-c", "raise SystemExit(3)"]) == 3


def test_base_url_for_wildcard_hosts() -> None:
    assert base_url("0.0.0.0", 80) == "http://127.0.0.1:80/v1"
    assert base_url("::", 80) == "http://[::1]:80/v1"
    assert base_url("10.1.2.3", 8000) == "http://10.1.2.3:8000/v1"


def test_busy_port_fails_in_one_line(run_ilab) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        result = run_ilab("model", "serve", "--port", str(busy.getsockname()[1]))
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "Cannot listen on 127.0.0.1:" in result.stderr


def test_http_limits_documented_in_serve_chat_md_are_the_defaults() -> None:
    from labrador.config import ServeConfig
    from labrador.serve.connections import ConnectionLimits

    config, limits = ServeConfig(), ConnectionLimits()
    assert (config.header_timeout, config.body_timeout, config.max_connections) == (None, None, None)  # not set
    assert (limits.header_timeout, limits.body_timeout, limits.max_connections) == (10.0, 10.0, 128)


def test_background_server_gets_the_limit_flags_given() -> None:
    from labrador.cli.model_serve import _http_flags

    assert _http_flags(8.0, None, 2.5, 64) == ("--max-body-mb=8.0", "--body-timeout=2.5", "--max-connections=64")
