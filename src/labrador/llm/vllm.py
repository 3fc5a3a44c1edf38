"""In-process vLLM backend for HF directories on a CUDA GPU (chosen by `get_client` when vllm imports and
torch sees CUDA).

NOT exercised by the test suite: the CI machine has no GPU and no vllm. It uses only vLLM's documented
offline API (`vllm.LLM`, `LLM.chat`, `LLM.generate`, `SamplingParams` with `prompt_logprobs`). Requests run
one at a time on a worker thread, which leaves vLLM's continuous batching unused; for high-throughput
generation, serve the model (`ilab model serve --backend vllm`) and pass its URL as an endpoint instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labrador.errors import ModelError
from labrador.llm.base import Completion, Message, SamplingParams
from labrador.llm.llama_cpp import _load_template
from labrador.llm.worker import SerialWorker, WorkerCounters

DEFAULT_PARAMS = SamplingParams()


class VLLMClient(WorkerCounters):
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
        self._chat_template = _load_template(chat_template) if chat_template else None
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

    def _chat(self, messages: list[Message], params: SamplingParams) -> Completion:
        outputs = self._llm.chat([messages], self._sampling(params), chat_template=self._chat_template,
                                 use_tqdm=False)
        return self._completion(outputs[0])

    def _complete(self, prompt: str, params: SamplingParams) -> Completion:
        return self._completion(self._llm.generate([prompt], self._sampling(params), use_tqdm=False)[0])

    def chat(self, messages: list[Message], params: SamplingParams = DEFAULT_PARAMS) -> Completion:
        return self._worker.run(lambda: self._chat(messages, params))

    async def achat(self, messages: list[Message], params: SamplingParams = DEFAULT_PARAMS) -> Completion:
        return await self._worker.arun(lambda: self._chat(messages, params))

    def complete(self, prompt: str, params: SamplingParams = DEFAULT_PARAMS) -> Completion:
        return self._worker.run(lambda: self._complete(prompt, params))

    async def acomplete(self, prompt: str, params: SamplingParams = DEFAULT_PARAMS) -> Completion:
        return await self._worker.arun(lambda: self._complete(prompt, params))

    def _loglikelihoods(self, context: str, continuations: list[str]) -> list[float]:
        tokenizer = self._llm.get_tokenizer()
        spaces = len(context) - len(context.rstrip(" "))
        ctx = context[:-spaces] if spaces else context
        n_ctx = max(1, len(tokenizer(ctx)["input_ids"]))
        prompts = [ctx + (context[-spaces:] if spaces else "") + c for c in continuations]
        sampling = self._vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
        results = []
        for output in self._llm.generate(prompts, sampling, use_tqdm=False):
            ids, logprobs = output.prompt_token_ids, output.prompt_logprobs
            results.append(sum(logprobs[i][ids[i]].logprob for i in range(n_ctx, len(ids))))
        return results

    def loglikelihoods(self, context: str, continuations: list[str]) -> list[float]:
        return self._worker.run(lambda: self._loglikelihoods(context, continuations))

    def close(self) -> None:
        self._worker.close()
