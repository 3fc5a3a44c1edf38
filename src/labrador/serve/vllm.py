"""Hugging Face checkpoints on a GPU: hand the port over to vLLM's own OpenAI server.

vLLM already implements the same API (continuous batching, streaming, `--api-key`), so putting a proxy in
front would only add latency. `ilab model serve` starts `python -m vllm.entrypoints.openai.api_server` as a
child on the requested host/port, forwards SIGINT/SIGTERM to it and exits with its exit code.
The flags in `--backend-args` are appended last, so they override the ones built here.
"""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

VLLM_MODULE = "vllm.entrypoints.openai.api_server"


def vllm_available() -> bool:
    """vLLM importable and a CUDA GPU visible (checked without importing vllm, which is slow)."""
    if importlib.util.find_spec("vllm") is None:
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def build_vllm_command(model_dir: Path, *, host: str, port: int, served_name: str, max_ctx_size: int | None,
                       api_key: str | None = None, chat_template: Path | None = None,
                       backend_args: Sequence[str] = (), python: str = sys.executable) -> list[str]:
    command = [python, "-m", VLLM_MODULE, "--model", str(model_dir), "--host", host, "--port", str(port),
               "--served-model-name", served_name]
    if max_ctx_size:
        command += ["--max-model-len", str(max_ctx_size)]
    if api_key:
        command += ["--api-key", api_key]
    if chat_template:
        command += ["--chat-template", str(chat_template)]
    return command + list(backend_args)


def run_vllm(command: list[str], *, on_start: object = None) -> int:
    """Run vLLM in the foreground; SIGINT/SIGTERM go to vLLM, which shuts down; return its exit code."""
    child = subprocess.Popen(command)

    def forward(signum: int, _frame: FrameType | None) -> None:
        child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if callable(on_start):
            on_start()
        code = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    # vLLM exits with -SIGTERM/-SIGINT when told to stop: that is the clean stop we asked for.
    return 0 if code in (-signal.SIGTERM, -signal.SIGINT) else code
