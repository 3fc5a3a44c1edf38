"""In-process llama.cpp backend (llama-cpp-python) for GGUF files: no server needed.

One `Llama` context per client. Every request runs on a single worker thread (see `worker.py`), so callers
from many threads or an asyncio loop can submit at will and the CPU stays busy between requests.

Chat prompts are rendered with the model's own Jinja chat template (`tokenizer.chat_template` in the GGUF
metadata), or with the `chat_template` option (a Jinja string or the path of a file holding one). Models with
neither get ChatML, the most common format for small instruct models. Sampling is pure temperature/top_p as in
the OpenAI API (llama.cpp's top_k=40/min_p=0.05 defaults are switched off) unless `params.extra` sets them.

Log-likelihoods are computed with the low-level decode API: the context is decoded once, then each
continuation is decoded after it with logits for every position. This avoids `logits_all=True`, which would
allocate an n_ctx x n_vocab float matrix (800 MB for SmolLM2 at 4096 tokens) for every client. The server's
per-token `logprobs` (`score`) use the same decode pass over prompt and answer.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np

from labrador.errors import LabradorError, ModelError
from labrador.llm.base import Completion, Delta, Message, Request, SamplingParams
from labrador.llm.templates import CHATML_TEMPLATE, load_template
from labrador.llm.worker import Cancelled, Emit, InProcessClient, SerialWorker, default_threads, n_samples

DEFAULT_N_CTX = 4096
OPENAI_SAMPLING = {"top_k": 0, "min_p": 0.0, "repeat_penalty": 1.0}
Scores = tuple[list[bytes], list[float | None], list[dict[str, float] | None], int]


def _train_context_length(model_path: Path) -> int | None:
    from labrador.models.gguf_meta import read_gguf

    try:
        return read_gguf(model_path).context_length
    except Exception:  # noqa: BLE001 - only a hint for n_ctx; llama.cpp reports real load errors itself
        return None


class LlamaCppClient(InProcessClient):
    """`LLMClient` over a GGUF file loaded in this process."""

    def __init__(self, model_path: Path | str, *, model_name: str | None = None, n_ctx: int | None = None,
                 n_threads: int | None = None, n_batch: int = 512, chat_template: str | None = None) -> None:
        import llama_cpp

        self.model_path = Path(model_path)
        self.model_name = model_name or self.model_path.stem
        if n_ctx is None:
            train_ctx = _train_context_length(self.model_path)
            n_ctx = min(DEFAULT_N_CTX, train_ctx) if train_ctx else DEFAULT_N_CTX
        threads = n_threads or default_threads()
        try:
            self._llm = llama_cpp.Llama(model_path=str(self.model_path), n_ctx=n_ctx, n_batch=min(n_batch, n_ctx),
                                        n_threads=threads, n_threads_batch=threads, verbose=False)
        except (ValueError, RuntimeError, OSError) as err:
            raise ModelError(f"llama.cpp could not load {self.model_path}: {err}. Check that the file is a "
                             "complete GGUF model (re-download or re-convert it).") from None
        self.context_length = self._llm.n_ctx()
        self._n_vocab = self._llm.n_vocab()
        self._worker = SerialWorker("llama-cpp")
        template = load_template(chat_template) if chat_template else self._llm.metadata.get(
            "tokenizer.chat_template") or CHATML_TEMPLATE
        self._formatter = self._make_formatter(template)

    def _make_formatter(self, template: str) -> Any:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        llm = self._llm
        eos_id, bos_id = llm.token_eos(), llm.token_bos()
        eos = llm._model.token_get_text(eos_id) if eos_id != -1 else ""
        bos = llm._model.token_get_text(bos_id) if bos_id != -1 else ""
        return Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos, stop_token_ids=[eos_id])

    # -- tokenisation --
    def _tokenize(self, text: str, add_bos: bool = True) -> list[int]:
        return self._llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    def count_tokens(self, text: str) -> int:
        return len(self._tokenize(text, add_bos=False))

    def chat_prompt_tokens(self, messages: list[Message]) -> list[int]:
        """The prompt tokens a chat request would feed the model (template applied, generation prompt added)."""
        try:
            rendered = self._formatter(messages=messages)
        except Exception as err:  # noqa: BLE001 - jinja raises many types; all mean "template failed"
            raise LabradorError(f"The chat template of {self.model_name} could not render these messages: "
                                f"{err}. Check the roles, or pass another template with chat_template.") from None
        return self._tokenize(rendered.prompt, add_bos=not rendered.added_special)

    def _prompt_tokens(self, request: Request) -> list[int]:
        return self.chat_prompt_tokens(request) if isinstance(request, list) else self._tokenize(request)

    # -- generation (runs on the worker thread) --
    def _sampling(self, params: SamplingParams, room: int) -> dict[str, Any]:
        return {"max_tokens": max(1, min(params.max_tokens, room)), "temperature": max(params.temperature, 0.0),
                "top_p": params.top_p, **OPENAI_SAMPLING, **dict(params.extra), "stop": list(params.stop) or None}

    def _generate(self, request: Request, params: SamplingParams) -> Completion:
        tokens = self._prompt_tokens(request)
        sampling = self._sampling(params, self._check_room(len(tokens)))
        base_seed = params.seed if params.seed is not None else random.getrandbits(31)
        # Evaluate every request's prompt from scratch: reusing another request's cached prefix changes the
        # batch split, hence the logits in the last bits, hence sampled text - the same seed must give the same
        # texts whatever ran before. Samples 2..n of this request still reuse this request's prompt.
        self._llm.n_tokens = 0

        def sample(i: int) -> tuple[str, str, int]:
            out = self._llm.create_completion(prompt=tokens, seed=base_seed + i, **sampling)
            choice, done = out["choices"][0], out["usage"]["completion_tokens"]
            self._worker.count_tokens(len(tokens), done)
            return choice["text"], choice.get("finish_reason") or "stop", done

        texts, reasons, completion_tokens = n_samples(params, sample)
        return Completion(texts=texts, prompt_tokens=len(tokens), completion_tokens=completion_tokens,
                          finish_reasons=reasons, model=self.model_name)

    def _produce(self, request: Request, params: SamplingParams, emit: Emit, cancelled: Cancelled) -> None:
        import llama_cpp

        tokens = self._prompt_tokens(request)
        sampling = self._sampling(params, self._check_room(len(tokens)))
        self._llm.n_tokens = 0  # as in _generate: a streamed answer equals the whole one
        chunks = self._llm.create_completion(
            prompt=tokens, stream=True, seed=params.seed if params.seed is not None else random.getrandbits(31),
            # Checked once per token: a caller that stops reading, or a server shutting down, ends it early.
            stopping_criteria=llama_cpp.StoppingCriteriaList([lambda _ids, _logits: cancelled()]), **sampling)
        reason, produced = "stop", 0
        for chunk in chunks:
            choice = chunk["choices"][0]
            if choice["text"]:
                emit(Delta(choice["text"]))
                produced += 1  # one piece is one token except where text was held back to check stop strings
            reason = choice.get("finish_reason") or reason
        self._worker.count_tokens(len(tokens), produced)
        emit(Delta("", reason, len(tokens), produced))

    # -- log-likelihoods (low-level decode; runs on the worker thread) --
    def _decode(self, tokens: list[int], n_past: int, all_logits: bool) -> np.ndarray:
        """Decode `tokens` at positions n_past.. and return logits: one row per token, or just the last row."""
        llm = self._llm
        llm._ctx.kv_cache_seq_rm(-1, n_past, -1)
        rows: list[np.ndarray] = []
        step = llm.n_batch
        for start in range(0, len(tokens), step):
            chunk = tokens[start:start + step]
            llm._batch.set_batch(batch=chunk, n_past=n_past + start, logits_all=all_logits)
            llm._ctx.decode(llm._batch)
            n_rows = len(chunk) if all_logits else 1
            rows.append(np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(n_rows, self._n_vocab)).copy())
        return np.concatenate(rows) if all_logits else rows[-1]

    @staticmethod
    def _log_softmax(logits: np.ndarray) -> np.ndarray:
        logits = logits.astype(np.float64)
        peak = logits.max(axis=-1, keepdims=True)
        return logits - peak - np.log(np.exp(logits - peak).sum(axis=-1, keepdims=True))

    def _split(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """Tokens of context and continuation, tokenised together so the boundary matches real text."""
        spaces = len(context) - len(context.rstrip(" "))
        if spaces:  # a trailing space belongs to the next word's token in BPE vocabularies
            continuation = context[-spaces:] + continuation
            context = context[:-spaces]
        whole = self._tokenize(context + continuation)
        n_context = len(self._tokenize(context))
        if n_context == 0:  # models without BOS: condition the first token on EOS as a document start
            return [self._llm.token_eos()], whole
        n_context = min(n_context, len(whole) - 1) if len(whole) > 1 else n_context
        return whole[:n_context], whole[n_context:]

    def _loglikelihoods(self, context: str, continuations: list[str]) -> list[float]:
        llm = self._llm
        llm.n_tokens = 0  # forget llama-cpp-python's prompt cache: we overwrite the KV cache below
        llm._ctx.kv_cache_seq_rm(-1, 0, -1)
        results: list[float] = []
        cached_prefix: list[int] | None = None
        prefix_logprobs: np.ndarray | None = None
        try:
            for continuation in continuations:
                prefix, cont = self._split(context, continuation)
                if not cont:
                    results.append(0.0)
                    continue
                overflow = len(prefix) + len(cont) - self.context_length
                if overflow > 0:  # keep the end of the context, as evaluation harnesses do
                    prefix = prefix[min(overflow, len(prefix) - 1):]
                    cont = cont[-(self.context_length - len(prefix)):]
                if prefix != cached_prefix:
                    prefix_logprobs = self._log_softmax(self._decode(prefix, 0, all_logits=False)[0])
                    cached_prefix = prefix
                assert prefix_logprobs is not None
                total = float(prefix_logprobs[cont[0]])
                if len(cont) > 1:
                    rows = self._log_softmax(self._decode(cont[:-1], len(prefix), all_logits=True))
                    total += float(rows[np.arange(len(cont) - 1), cont[1:]].sum())
                self._worker.count_tokens(len(prefix) + len(cont), 0)
                results.append(total)
        finally:
            llm._ctx.kv_cache_seq_rm(-1, 0, -1)
            llm.n_tokens = 0
        return results

    # -- per-token log-probabilities of a prompt and its answer (the server's echo/logprobs) --
    def _score(self, prompt: str, answer: str, top_n: int, echo: bool) -> Scores:
        prompt_tokens = self._tokenize(prompt)
        tokens = prompt_tokens + (self._tokenize(answer, add_bos=False) if answer else [])
        llm = self._llm
        llm.n_tokens = 0
        try:
            rows = self._log_softmax(self._decode(tokens[:-1], 0, all_logits=True)) if len(tokens) > 1 else None
        finally:
            llm._ctx.kv_cache_seq_rm(-1, 0, -1)
            llm.n_tokens = 0
        values: list[float | None] = [None]
        tops: list[dict[str, float] | None] = [None]
        for j in range(len(tokens) - 1):  # row j predicts token j + 1
            assert rows is not None
            values.append(float(rows[j, tokens[j + 1]]))
            best = np.argpartition(rows[j], -top_n)[-top_n:] if top_n else []
            tops.append({self._piece(int(t)).decode("utf-8", "replace"): float(rows[j, t]) for t in best}
                        if top_n else None)
        bos = 1 if prompt_tokens and prompt_tokens[0] == llm.token_bos() else 0
        first = bos if echo else len(prompt_tokens)
        return [self._piece(t) for t in tokens[first:]], values[first:], tops[first:], len(prompt_tokens)

    def _piece(self, token: int) -> bytes:
        return self._llm.detokenize([token], special=True)

    async def ascore(self, prompt: str, answer: str, top_n: int, echo: bool) -> Scores:
        """(token bytes, log-probability of each given the ones before (None for the first), top_n alternatives
        of each or None, number of prompt tokens) for `prompt + answer`, from the first prompt token (after BOS)
        with `echo`, else from the answer's first token."""
        return await self._running().arun(lambda: self._score(prompt, answer, top_n, echo))

    def _unload(self) -> None:
        self._llm.close()
