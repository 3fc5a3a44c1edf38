"""GGUF models served by llama-cpp-python in-process.

Chat prompts are rendered here with the model's Jinja chat template (GGUF metadata `tokenizer.chat_template`,
or `--chat-template FILE`), tokenized once, and generated with `Llama.create_completion`, which takes a
stopping criterion: that is how shutdown ends a running generation at the next token. Sampling is pure
temperature/top_p as in the OpenAI API (llama.cpp's top_k=40/min_p=0.05 defaults are switched off) unless a
client sends top_k, min_p or repeat_penalty itself.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from labrador.errors import ModelError
from labrador.serve.protocol import ChunkMaker, GenerationRequest, RequestError, response
from labrador.serve.worker import Cancelled, Emit, WorkerBackend

# For models whose GGUF has no chat template: ChatML, the most common format of small instruct models.
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
OPENAI_SAMPLING = {"top_k": 0, "min_p": 0.0, "repeat_penalty": 1.0}


def default_threads() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def load_llama(path: Path, *, n_ctx: int, n_threads: int | None = None) -> Any:
    """Load a GGUF file quietly; ModelError (one line) when llama.cpp refuses it."""
    import llama_cpp

    threads = n_threads or default_threads()
    try:
        return llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                               verbose=False)
    except (ValueError, RuntimeError, OSError) as err:
        raise ModelError(f"{path}: llama.cpp could not load this GGUF file ({err}); it may be truncated or "
                         "corrupt: download or convert it again.") from None


class LlamaCppBackend(WorkerBackend):
    def __init__(self, path: Path, *, model_id: str, n_ctx: int = 4096, n_threads: int | None = None,
                 chat_template: str | None = None) -> None:
        super().__init__()
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.model_id = model_id
        self.llama = load_llama(path, n_ctx=n_ctx, n_threads=n_threads)
        self.context_size = self.llama.n_ctx()
        template = chat_template or self.llama.metadata.get("tokenizer.chat_template") or CHATML_TEMPLATE
        eos, bos = self.llama.token_eos(), self.llama.token_bos()
        self.formatter = Jinja2ChatFormatter(template=template, eos_token=self._token_text(eos),
                                             bos_token=self._token_text(bos), stop_token_ids=[eos])

    def _token_text(self, token: int) -> str:
        return self.llama.detokenize([token], special=True).decode("utf-8", "replace") if token >= 0 else ""

    def _prompt(self, req: GenerationRequest) -> tuple[list[int], list[str]]:
        """The prompt tokens (chat template applied for chat requests) and the stop strings."""
        if req.messages is None:
            assert req.prompt is not None
            return self.llama.tokenize(req.prompt.encode("utf-8"), add_bos=True, special=True), req.stop
        try:
            rendered = self.formatter(messages=req.messages)
        except Exception as err:  # noqa: BLE001 - jinja raises many types; all mean "template failed"
            raise RequestError(f"The chat template could not render these messages: {err}.") from None
        stop = list(req.stop)
        if rendered.stop:
            stop += [rendered.stop] if isinstance(rendered.stop, str) else list(rendered.stop)
        tokens = self.llama.tokenize(rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special,
                                     special=True)
        return tokens, stop

    def _completion(self, req: GenerationRequest, cancelled: Cancelled, *, stream: bool,
                    seed: int | None) -> tuple[Any, int]:
        """llama.cpp's completion (or chunk iterator) and the number of prompt tokens."""
        import llama_cpp

        prompt, stop = self._prompt(req)
        n_prompt = len(prompt)
        if n_prompt >= self.context_size:
            raise RequestError(f"The prompt has {n_prompt} tokens; the context window is {self.context_size}. "
                               "Shorten the conversation.", code="context_length_exceeded", param="messages")
        kwargs: dict[str, Any] = {**OPENAI_SAMPLING, **req.extra}
        try:
            return self.llama.create_completion(
                prompt=prompt, stream=stream, temperature=req.temperature, top_p=req.top_p,
                max_tokens=req.max_tokens, stop=stop or None, seed=seed,
                # Checked once per token: lets shutdown, or a client that went away, end a generation early.
                stopping_criteria=llama_cpp.StoppingCriteriaList([lambda _ids, _logits: cancelled()]),
                **kwargs), n_prompt
        except ValueError as err:
            if "exceed context window" in str(err):
                raise RequestError(f"{err}. Shorten the prompt or lower max_tokens.",
                                   code="context_length_exceeded", param="messages") from None
            raise

    def _scored(self, req: GenerationRequest, cancelled: Cancelled) -> dict[str, Any]:
        """A completion with `echo` and/or `logprobs` (and max_tokens 0, which only echoes)."""
        from labrador.serve.logprobs import logprobs_object, score_tokens

        prompt_tokens, _ = self._prompt(req)
        choices: list[tuple[str, str]] = []
        objects: list[dict[str, Any] | None] = []
        generated_total = 0
        for i in range(req.n):
            text, reason = "", "length"
            if req.max_tokens != 0:
                out, _ = self._completion(req, cancelled, stream=False,
                                          seed=None if req.seed is None else req.seed + i)
                text, reason = out["choices"][0]["text"], out["choices"][0].get("finish_reason") or "stop"
                generated_total += out["usage"]["completion_tokens"]
            choices.append(((req.prompt or "") + text if req.echo else text, reason))
            if req.logprobs is None:
                objects.append(None)
                continue
            generated = self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=True) if text else []
            tokens = prompt_tokens + generated
            values, tops = score_tokens(self.llama, tokens, req.logprobs)
            bos = 1 if prompt_tokens and prompt_tokens[0] == self.llama.token_bos() else 0
            first = bos if req.echo else len(prompt_tokens)
            pieces = [self.llama.detokenize([t], special=True) for t in tokens[first:]]
            objects.append(logprobs_object(pieces, values[first:], tops[first:]))
        result = response(req, self.model_id, choices, len(prompt_tokens), generated_total)
        for choice, logprobs in zip(result["choices"], objects, strict=True):
            choice["logprobs"] = logprobs
        return result

    def generate(self, req: GenerationRequest, cancelled: Cancelled) -> dict[str, Any]:
        if req.messages is None and (req.echo or req.logprobs is not None or req.max_tokens == 0):
            return self._scored(req, cancelled)
        texts: list[tuple[str, str]] = []
        prompt_tokens = completion_tokens = 0
        for i in range(req.n):
            out, _ = self._completion(req, cancelled, stream=False,
                                      seed=None if req.seed is None else req.seed + i)
            choice = out["choices"][0]
            texts.append((choice["text"], choice.get("finish_reason") or "stop"))
            prompt_tokens = out["usage"]["prompt_tokens"]
            completion_tokens += out["usage"]["completion_tokens"]
        return response(req, self.model_id, texts, prompt_tokens, completion_tokens)

    def produce(self, req: GenerationRequest, emit: Emit, cancelled: Cancelled) -> None:
        maker = ChunkMaker(req, self.model_id)
        chunks, n_prompt = self._completion(req, cancelled, stream=True, seed=req.seed)
        if maker.chat:
            emit(maker.role())
        elif req.echo and req.prompt:
            emit(maker.text(req.prompt))
        reason = "stop"
        produced = 0
        for chunk in chunks:
            choice = chunk["choices"][0]
            if choice["text"]:
                emit(maker.text(choice["text"]))
                produced += 1
            if choice.get("finish_reason"):
                reason = choice["finish_reason"]
        emit(maker.text("", reason))
        if req.include_usage:
            # llama.cpp reports no usage when streaming: one chunk is one token except where text was held back
            # to check stop sequences, so the count is exact in the common case.
            emit(maker.usage(n_prompt, produced))

    def unload(self) -> None:
        llama = getattr(self, "llama", None)
        if llama is not None and hasattr(llama, "close"):
            llama.close()
        self.llama = None
