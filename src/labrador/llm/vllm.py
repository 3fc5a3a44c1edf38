"""vLLM for HF directories on a CUDA GPU: in-process (`VLLMClient`, chosen by `get_client` when vllm imports and
torch sees CUDA), or as vLLM's own OpenAI server (`ilab model serve --backend vllm` hands it the port).

The in-process client is NOT exercised by the test suite: the CI machine has no GPU and no vllm. It uses only
vLLM's documented offline API (`vllm.LLM`, `LLM.chat`, `LLM.generate`, `SamplingParams` with
`prompt_logprobs`). Requests run one at a time on a worker thread, which leaves vLLM's continuous batching
unused, and a streamed answer arrives in one piece; for high-throughput generation, serve the model and pass
its URL as an endpoint instead.

The server: vLLM already implements the same HTTP API (continuous batching, streaming, `--api-key`), so a proxy
in front would only add latency. `run_vllm` starts `python -m vllm.entrypoints.openai.api_server` as a child,
forwards SIGINT/SIGTERM to it and returns its exit code; flags in `--backend-args` come last, so they override
the ones built here.
"""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any

from labrador.errors import ModelError
from labrador.llm.base import Completion, Delta, Request, SamplingParams
from labrador.llm.templates import load_template
from labrador.llm.worker import Cancelled, Emit, InProcessClient, SerialWorker

VLLM_MODULE = "vllm.entrypoints.openai.api_server"


def vllm_available() -> bool:
    """True when vllm can be imported and torch sees a CUDA device (checked without importing vllm, which is
    slow)."""
    if importlib.util.find_spec("vllm") is None:
        return False
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001 - a broken torch install means no GPU backend
        return False


class VLLMClient(InProcessClient):
    def __init__(self, model_path: Path | str, *, model_name: str | None = None, n_ctx: int | None = None,
                 chat_template: str | None = None, gpu_memory_utilization: float = 0.9) -> None:
        import vllm

        self._vllm = vllm
        self.model_path = Path(model_path)
        self.model_name = model_name or self.model_path.name
        try:
            self._llm = vllm.LLM(model=str(self.model_path), max_model_len=n_ctx,
                                 gpu_memory_utilization=gpu_memory_utilization)
        except Exception as err:  # noqa: BLE001 - vLLM raises many types on load; report one line
            raise ModelError(f"vLLM could not load {self.model_path}: {' '.join(str(err).split())[:300]}") from None
        self._chat_template = load_template(chat_template) if chat_template else None
        self.context_length = self._llm.llm_engine.model_config.max_model_len
        self._worker = SerialWorker("vllm")

    def _sampling(self, params: SamplingParams) -> Any:
        return self._vllm.SamplingParams(n=params.n, temperature=params.temperature, top_p=params.top_p,
                                         max_tokens=params.max_tokens, stop=list(params.stop) or None,
                                         seed=params.seed)

    def _completion(self, output: Any) -> Completion:
        texts = [o.text for o in output.outputs]
        produced = sum(len(o.token_ids) for o in output.outputs)
        prompt = len(output.prompt_token_ids or [])
        self._worker.count_tokens(prompt, produced)
        return Completion(texts=texts, prompt_tokens=prompt, completion_tokens=produced,
                          finish_reasons=[o.finish_reason or "stop" for o in output.outputs], model=self.model_name)

    def _generate(self, request: Request, params: SamplingParams) -> Completion:
        if isinstance(request, list):
            outputs = self._llm.chat([request], self._sampling(params), chat_template=self._chat_template,
                                     use_tqdm=False)
        else:
            outputs = self._llm.generate([request], self._sampling(params), use_tqdm=False)
        return self._completion(outputs[0])

    def _produce(self, request: Request, params: SamplingParams, emit: Emit, cancelled: Cancelled) -> None:
        whole = self._generate(request, replace(params, n=1))
        emit(Delta(whole.text))
        emit(Delta("", whole.finish_reasons[0], whole.prompt_tokens, whole.completion_tokens))

    def _loglikelihoods(self, context: str, continuations: list[str]) -> list[float]:
        tokenizer = self._llm.get_tokenizer()
        ctx = context.rstrip(" ")  # a trailing space belongs to the continuation's first token
        n_ctx = max(1, len(tokenizer(ctx)["input_ids"]))
        prompts = [context + c for c in continuations]
        sampling = self._vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
        results = []
        for output in self._llm.generate(prompts, sampling, use_tqdm=False):
            ids, logprobs = output.prompt_token_ids, output.prompt_logprobs
            results.append(sum(logprobs[i][ids[i]].logprob for i in range(n_ctx, len(ids))))
        return results


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


def run_vllm(command: list[str], *, on_start: Callable[[], None] | None = None) -> int:
    """Run vLLM's server in the foreground; SIGINT/SIGTERM go to it, and it shuts down; return its exit code."""
    child = subprocess.Popen(command)

    def forward(signum: int, _frame: FrameType | None) -> None:
        child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if on_start is not None:
            on_start()
        code = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    # vLLM exits with -SIGTERM/-SIGINT when told to stop: that is the clean stop we asked for.
    return 0 if code in (-signal.SIGTERM, -signal.SIGINT) else code
