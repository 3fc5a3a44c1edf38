"""Hugging Face checkpoints on CPU with transformers: the fallback when vLLM or a GPU is missing.

Slow but exact: it is the same model the training stage wrote. Streaming decodes the growing token list and
sends the new suffix, holding back text that could still turn into a stop sequence.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from labrador.errors import ModelError
from labrador.serve.llama_backend import default_threads
from labrador.serve.protocol import ChunkMaker, GenerationRequest, RequestError, response
from labrador.serve.worker import Cancelled, Emit, WorkerBackend

OnText = Callable[[str], None]


class StopText:
    """Accumulates generated text, cuts it at the first stop sequence, forwards only text that is final."""

    def __init__(self, stops: list[str], on_text: OnText | None) -> None:
        self.stops = [s for s in stops if s]
        self.on_text = on_text
        self.text = ""
        self.sent = 0
        self.hit = False
        self.hold = max((len(s) for s in self.stops), default=1) - 1

    def feed(self, piece: str) -> None:
        if self.hit:
            return
        self.text += piece
        found = [i for i in (self.text.find(s, max(0, self.sent - len(s))) for s in self.stops) if i >= 0]
        if found:
            self.text = self.text[:min(found)]
            self.hit = True
            self._flush(len(self.text))
        else:
            self._flush(len(self.text) - self.hold)

    def _flush(self, upto: int) -> None:
        if upto > self.sent:
            if self.on_text is not None:
                self.on_text(self.text[self.sent:upto])
            self.sent = upto

    def finish(self) -> str:
        self._flush(len(self.text))
        return self.text


def _streamer(tokenizer: Any, on_text: OnText) -> Any:
    from transformers.generation.streamers import BaseStreamer

    class Streamer(BaseStreamer):
        def __init__(self) -> None:
            self.ids: list[int] = []
            self.prompt_seen = False
            self.printed = 0

        def put(self, value: Any) -> None:
            if not self.prompt_seen:  # generate() first hands over the prompt
                self.prompt_seen = True
                return
            self.ids.extend(value.reshape(-1).tolist())
            self._emit(final=False)

        def _emit(self, final: bool) -> None:
            text = tokenizer.decode(self.ids, skip_special_tokens=True)
            if not final and text.endswith("\ufffd"):  # half of a multi-byte character: wait for the rest
                return
            if len(text) > self.printed:
                on_text(text[self.printed:])
                self.printed = len(text)

        def end(self) -> None:
            self._emit(final=True)

    return Streamer()


class TransformersBackend(WorkerBackend):
    def __init__(self, path: Path, *, model_id: str, n_ctx: int = 4096, n_threads: int | None = None,
                 chat_template: str | None = None) -> None:
        super().__init__()
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.set_num_threads(n_threads or default_threads())
        # A GGUF file also loads (dequantized) when this backend is asked for explicitly.
        where, extra = (str(path.parent), {"gguf_file": path.name}) if path.is_file() else (str(path), {})
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(where, **extra)
            self.model = AutoModelForCausalLM.from_pretrained(where, dtype=torch.float32, **extra)
        except (OSError, ValueError, RuntimeError, KeyError) as err:
            raise ModelError(f"{path}: transformers could not load this model ({err}). Check that it is a "
                             "Hugging Face checkpoint directory (config.json, weights, tokenizer).") from None
        self.model.eval()
        if chat_template:
            self.tokenizer.chat_template = chat_template
        self.model_id = model_id
        limit = getattr(self.model.config, "max_position_embeddings", None) or n_ctx
        self.context_size = min(n_ctx, limit)
        eos = self.model.generation_config.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])

    def _prompt_ids(self, req: GenerationRequest) -> Any:
        if req.messages is not None:
            if not self.tokenizer.chat_template:
                raise RequestError("This model has no chat template; use /v1/completions or serve it with "
                                   "--chat-template FILE.")
            text = self.tokenizer.apply_chat_template(req.messages, tokenize=False, add_generation_prompt=True)
            return self.tokenizer(text, add_special_tokens=False, return_tensors="pt").input_ids
        return self.tokenizer(req.prompt, return_tensors="pt").input_ids

    def _run(self, req: GenerationRequest, cancelled: Cancelled, on_text: OnText | None,
             seed: int | None) -> tuple[str, str, int, int]:
        """One sampled text: (text, finish_reason, prompt_tokens, completion_tokens)."""
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        ids = self._prompt_ids(req)
        n_prompt = int(ids.shape[1])
        room = self.context_size - n_prompt
        if room <= 0:
            raise RequestError(f"The prompt has {n_prompt} tokens; the context window is {self.context_size}. "
                               "Shorten the prompt.", code="context_length_exceeded", param="messages")
        wanted = room if req.max_tokens is None else min(req.max_tokens, room)
        if wanted == 0:  # max_tokens 0 (completions with echo): nothing to generate
            return "", "length", n_prompt, 0
        stops = StopText(req.stop, on_text)

        class Stop(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.full((input_ids.shape[0],), cancelled() or stops.hit, dtype=torch.bool)

        streamer = _streamer(self.tokenizer, stops.feed)
        options: dict[str, Any] = {"max_new_tokens": wanted,
                                   "do_sample": req.temperature > 0, "streamer": streamer,
                                   "stopping_criteria": StoppingCriteriaList([Stop()]),
                                   "pad_token_id": self.tokenizer.pad_token_id or self.tokenizer.eos_token_id}
        if req.temperature > 0:
            options.update(temperature=req.temperature, top_p=req.top_p, top_k=0)
            if seed is not None:
                torch.manual_seed(seed)
        with torch.inference_mode():
            self.model.generate(ids, attention_mask=torch.ones_like(ids), **options)
        text = stops.finish()
        ended = stops.hit or bool(streamer.ids and streamer.ids[-1] in self.eos_ids)
        return text, "stop" if ended else "length", n_prompt, len(streamer.ids)

    def generate(self, req: GenerationRequest, cancelled: Cancelled) -> dict[str, Any]:
        if req.logprobs is not None:
            raise RequestError("'logprobs' is not supported by the transformers backend; serve a GGUF file "
                               "(llama-cpp backend) for likelihood scoring.", param="logprobs")
        texts: list[tuple[str, str]] = []
        n_prompt = n_completion = 0
        for i in range(req.n):
            text, reason, n_prompt, produced = self._run(req, cancelled, None,
                                                         None if req.seed is None else req.seed + i)
            texts.append(((req.prompt or "") + text if req.echo else text, reason))
            n_completion += produced
        return response(req, self.model_id, texts, n_prompt, n_completion)

    def produce(self, req: GenerationRequest, emit: Emit, cancelled: Cancelled) -> None:
        maker = ChunkMaker(req, self.model_id)
        if maker.chat:
            emit(maker.role())
        elif req.echo and req.prompt:
            emit(maker.text(req.prompt))
        _, reason, n_prompt, produced = self._run(req, cancelled, lambda t: emit(maker.text(t)), req.seed)
        emit(maker.text("", reason))
        if req.include_usage:
            emit(maker.usage(n_prompt, produced))

    def unload(self) -> None:
        self.model = None
