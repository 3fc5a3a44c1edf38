"""`ilab model chat`: -qq on the embedded model, the interactive mode through a real pseudo-terminal, bad inputs,
and context trimming with a real llama.cpp model."""

from __future__ import annotations

import io
import json
import socket
import sys
from pathlib import Path

import pexpect
import pytest

from labrador.llm.base import SamplingParams

ILAB = str(Path(sys.executable).with_name("ilab"))
QUESTION = "What is the capital of France?"

pytestmark = pytest.mark.slow


def test_quick_question_answers_paris(run_ilab, isolated_home: Path) -> None:
    result = run_ilab("model", "chat", "-qq", QUESTION, "--greedy", "--threads", "1")
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout
    assert not result.stderr.strip()
    (log,) = (isolated_home / "data" / "labrador" / "chatlogs").glob("chat_*.jsonl")
    roles = [json.loads(line).get("role") for line in log.read_text().splitlines()]
    assert roles == [None, "user", "assistant"]


@pytest.mark.parametrize("context", ["file", "text", "none"])
def test_context_option_sets_the_system_prompt(context: str, run_ilab, isolated_home: Path, tmp_path: Path) -> None:
    prompt = "You are a terse assistant. Answer in one word."
    if context == "file":
        (tmp_path / "system.txt").write_text(prompt + "\n")
        arg, expected = str(tmp_path / "system.txt"), prompt
    else:
        arg, expected = (prompt, prompt) if context == "text" else ("none", None)
    result = run_ilab("model", "chat", "-qq", QUESTION, "--greedy", "--threads", "1", "--max-tokens", "8",
                      "--context", arg)
    assert result.returncode == 0, result.stderr
    (log,) = (isolated_home / "data" / "labrador" / "chatlogs").glob("chat_*.jsonl")
    session = json.loads(log.read_text().splitlines()[0])
    assert session["type"] == "session" and session["system"] == expected


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("case", ["missing", "truncated", "not-a-model", "unreachable"])
def test_bad_inputs_give_one_line_and_exit_1(case: str, run_ilab, tmp_path: Path, smollm_gguf: Path) -> None:
    if case == "missing":
        args, expected = ["-m", str(tmp_path / "nope.gguf")], "does not exist"
    elif case == "truncated":
        broken = tmp_path / "broken.gguf"
        with smollm_gguf.open("rb") as src, broken.open("wb") as dst:
            dst.write(src.read(smollm_gguf.stat().st_size // 3))
        args, expected = ["-m", str(broken)], "truncated"
    elif case == "not-a-model":
        text = tmp_path / "notes.gguf"
        text.write_text("just some notes\n")
        args, expected = ["-m", str(text)], "not a GGUF model file"
    else:
        args, expected = ["--endpoint-url", f"http://127.0.0.1:{_closed_port()}/v1"], "Cannot reach the endpoint"
    result = run_ilab("model", "chat", *args, "-qq", QUESTION)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0] and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_interactive_session_through_a_pty(isolated_home: Path, tmp_path: Path) -> None:
    saved = tmp_path / "session.json"
    child = pexpect.spawn(ILAB, ["model", "chat", "--greedy", "--max-tokens", "32", "--threads", "1"],
                          encoding="utf-8", timeout=120, dimensions=(40, 120))
    try:
        child.expect("Type /h for help")
        child.expect(">>> ")
        child.sendline(QUESTION)
        child.expect("Paris")
        child.expect(">>> ")
        child.sendline("/h")
        child.expect("/s FILE")
        child.expect(">>> ")
        child.sendline(f"/s {saved}")
        child.expect("Saved to")
        child.expect(">>> ")
        child.sendline("/c")
        child.expect("History cleared")
        child.expect(">>> ")
        child.sendline(f"/l {saved}")
        child.expect("Loaded 2 messages")
        child.expect(">>> ")
        child.sendline("/m")
        child.expect("Multi-line input on")
        child.expect(">>> ")
        child.sendline("/m")
        child.expect("Multi-line input off")
        child.expect(">>> ")
        child.sendline("/n")
        child.expect("New session")
        child.expect(">>> ")
        child.sendline("/q")
        child.expect("Bye")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    session = json.loads(saved.read_text())
    assert [m["role"] for m in session["messages"]] == ["system", "user", "assistant"]
    assert "Paris" in session["messages"][2]["content"]
    logs = sorted((isolated_home / "data" / "labrador" / "chatlogs").glob("chat_*.jsonl"))
    assert len(logs) == 2  # /n started a second log
    entries = [json.loads(line) for line in logs[0].read_text().splitlines()]
    assert entries[0]["type"] == "session"
    assert [(e["role"], e["content"]) for e in entries if e["type"] == "message"][0] == ("user", QUESTION)
    assert [e["event"] for e in entries if e["type"] == "event"] == ["save", "clear", "load"]


def test_context_overflow_trims_the_oldest_turns(smollm_gguf: Path, tmp_path: Path) -> None:
    from rich.console import Console

    from labrador.chat import ChatSession
    from labrador.chat.stream import Streamer
    from labrador.chat.terminal import ChatLoop
    from labrador.llm import get_client

    client = get_client(str(smollm_gguf), n_ctx=256, n_threads=1)  # tiny window: a few turns overflow it
    try:
        session = ChatSession(client.model_name, "Answer briefly.", tmp_path / "logs")
        filler = "Tell me about the history of bread. " * 8
        for i in range(4):
            session.add("user", f"{i}: {filler}")
            session.add("assistant", f"{i}: {filler}")
        out = io.StringIO()
        loop = ChatLoop(Streamer(client), session, SamplingParams(temperature=0.0, max_tokens=16),
                        Console(file=out, width=100))
        loop.answer("What is the capital of France?")
    finally:
        client.close()
    assert "context full: dropped the" in out.getvalue()
    assert session.history[-2] == {"role": "user", "content": "What is the capital of France?"}
    assert session.history[-1]["role"] == "assistant" and session.history[-1]["content"]
    assert not any(m["content"].startswith("0:") for m in session.history)  # the oldest turn went first
    events = [json.loads(line) for line in session.log_path.read_text().splitlines()]
    assert any(e.get("event") == "trim" for e in events)


def test_session_save_and_load_round_trip(tmp_path: Path) -> None:
    from labrador.chat import ChatSession
    from labrador.errors import DataError

    first = ChatSession("m", "Be brief.", tmp_path / "logs")
    first.add("user", "hi")
    first.add("assistant", "hello")
    saved = first.save(tmp_path / "s.json")
    second = ChatSession("m", None, tmp_path / "logs")
    assert second.load(saved) == 2
    assert second.messages() == first.messages()
    third = ChatSession("m", None, None)
    assert third.load(first.log_path) == 2  # a chat log loads too
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"role": "user", "content": "ok"}\nnot json\n')
    with pytest.raises(DataError, match="bad.jsonl:2"):
        third.load(bad)
