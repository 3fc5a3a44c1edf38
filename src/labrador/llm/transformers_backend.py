"""Hugging Face transformers backend (CPU fallback for HF checkpoint directories, e.g. freshly trained ones).

Slow compared to llama.cpp, but it runs any checkpoint `ilab model train` writes without a conversion step.
Requests run one at a time on a worker thread (torch already uses every core for one forward pass).
The chat template is the tokenizer's (`tokenizer_config.json` / `chat_template.jinja`), or the `chat_template`
option (Jinja text or a file path). Streaming decodes the growing token list and sends the new suffix, holding
back text that could still turn into a stop sequence.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labrador.errors import LabradorError, ModelError
from labrador.llm.base import Completion, Delta, Message, Request, SamplingParams
from labrador.llm.templates import load_template
from labrador.llm.worker import Cancelled, Emit, InProcessClient, SerialWorker, n_samples

DEFAULT_N_CTX = 4096
OnText = Callable[[str], None]


def _cut_at_stop(text: str, stops: tuple[str, ...]) -> tuple[str, bool]:
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


class StopText:
    """Accumulates streamed text, cuts it at the first stop sequence, forwards only text that is final."""

    def __init__(self, stops: tuple[str, ...], on_text: OnText) -> None:
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
            self.on_text(self.text[self.sent:upto])
            self.sent = upto

    def finish(self) -> str:
        self._flush(len(self.text))
        return self.text


def _streamer(tokenizer: Any, on_text: OnText) -> Any:
    """A transformers streamer that decodes the new tokens so far and passes on the text not sent yet."""
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


class TransformersClient(InProcessClient):
    """`LLMClient` over a Hugging Face model directory, run by torch on the CPU."""

    def __init__(self, model_path: Path | str, *, model_name: str | None = None, n_ctx: int | None = None,
                 n_threads: int | None = None, chat_template: str | None = None) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model_path = Path(model_path)
        self.model_name = model_name or self.model_path.name
        if n_threads:  # otherwise torch's own intra-op default (changing it could change the last bits)
            torch.set_num_threads(n_threads)
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(str(self.model_path))
            self._model = AutoModelForCausalLM.from_pretrained(str(self.model_path), dtype=torch.float32).eval()
        except (OSError, ValueError) as err:
            raise ModelError(f"transformers could not load {self.model_path}: {' '.join(str(err).split())[:300]}. "
                             "Check that the directory holds config.json, weights and tokenizer files.") from None
        if chat_template:
            self._tokenizer.chat_template = load_template(chat_template)
        limit = getattr(self._model.config, "max_position_embeddings", None) or DEFAULT_N_CTX
        self.context_length = min(n_ctx or DEFAULT_N_CTX, limit)
        eos = self._model.generation_config.eos_token_id
        self._eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        pad = self._tokenizer.pad_token_id
        self._pad_id = pad if pad is not None else self._tokenizer.eos_token_id
        self._worker = SerialWorker("transformers")
        self._torch = torch

    def _encode(self, text: str, add_special_tokens: bool) -> list[int]:
        return list(self._tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"])

    def count_tokens(self, text: str) -> int:
        return len(self._encode(text, False))

    def chat_prompt_tokens(self, messages: list[Message]) -> list[int]:
        if not self._tokenizer.chat_template:
            raise LabradorError(f"{self.model_path} has no chat template in its tokenizer files; pass one with the "
                                "chat_template option (Jinja text or a file).")
        try:
            text = self._tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        except Exception as err:  # noqa: BLE001 - jinja raises many types; all mean "template failed"
            raise LabradorError(f"The chat template of {self.model_name} could not render these messages: "
                                f"{err}.") from None
        return self._encode(text, False)

    def _prompt_tokens(self, request: Request) -> list[int]:
        return self.chat_prompt_tokens(request) if isinstance(request, list) else self._encode(request, True)

    def _generate(self, request: Request, params: SamplingParams) -> Completion:
        torch = self._torch
        tokens = self._prompt_tokens(request)
        room = self._check_room(len(tokens))
        max_new = max(1, min(params.max_tokens, room))
        ids = torch.tensor([tokens])
        greedy = params.temperature <= 0
        sampling: dict[str, Any] = {"do_sample": False} if greedy else {
            "do_sample": True, "temperature": params.temperature, "top_p": params.top_p, "top_k": 0}
        base_seed = params.seed if params.seed is not None else int(torch.randint(0, 2**31 - 1, ()).item())

        def sample(i: int) -> tuple[str, str, int]:
            torch.manual_seed(base_seed + i)
            with torch.inference_mode():
                out = self._model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new,
                                           pad_token_id=self._pad_id, **sampling)
            new = out[0, len(tokens):].tolist()
            text, stopped = _cut_at_stop(self._tokenizer.decode(new, skip_special_tokens=True), params.stop)
            ended = bool(new) and new[-1] == self._tokenizer.eos_token_id
            self._worker.count_tokens(len(tokens), len(new))
            return text, "stop" if stopped or ended or len(new) < max_new else "length", len(new)

        texts, reasons, produced = n_samples(params, sample)
        return Completion(texts=texts, prompt_tokens=len(tokens), completion_tokens=produced, finish_reasons=reasons,
                          model=self.model_name)

    def _produce(self, request: Request, params: SamplingParams, emit: Emit, cancelled: Cancelled) -> None:
        torch = self._torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        tokens = self._prompt_tokens(request)
        max_new = max(1, min(params.max_tokens, self._check_room(len(tokens))))
        stops = StopText(params.stop, lambda text: emit(Delta(text)))

        class Stop(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.full((input_ids.shape[0],), cancelled() or stops.hit, dtype=torch.bool)

        streamer = _streamer(self._tokenizer, stops.feed)
        sampling: dict[str, Any] = {"do_sample": False}
        if params.temperature > 0:
            sampling = {"do_sample": True, "temperature": params.temperature, "top_p": params.top_p, "top_k": 0}
            torch.manual_seed(params.seed if params.seed is not None else random.getrandbits(31))
        ids = torch.tensor([tokens])
        with torch.inference_mode():
            self._model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new,
                                 pad_token_id=self._pad_id, streamer=streamer,
                                 stopping_criteria=StoppingCriteriaList([Stop()]), **sampling)
        stops.finish()
        ended = stops.hit or bool(streamer.ids and streamer.ids[-1] in self._eos_ids)
        self._worker.count_tokens(len(tokens), len(streamer.ids))
        emit(Delta("", "stop" if ended else "length", len(tokens), len(streamer.ids)))

    def _loglikelihoods(self, context: str, continuations: list[str]) -> list[float]:
        torch = self._torch
        results = []
        ctx = context.rstrip(" ")  # a trailing space belongs to the continuation's first token
        for continuation in continuations:
            whole = self._encode(context + continuation, True)
            n_ctx = len(self._encode(ctx, True))
            if n_ctx == 0:  # no BOS and empty context: condition on EOS as a document start
                whole, n_ctx = [self._tokenizer.eos_token_id, *whole], 1
            n_ctx = min(n_ctx, len(whole) - 1)
            whole = whole[-self.context_length:]
            n_cont = min(len(whole) - 1, len(whole) - n_ctx)
            with torch.inference_mode():
                logits = self._model(torch.tensor([whole])).logits[0].double()
            logprobs = torch.log_softmax(logits[:-1], dim=-1)
            targets = torch.tensor(whole[1:])
            picked = logprobs[torch.arange(len(whole) - 1), targets][-n_cont:]
            results.append(float(picked.sum()))
            self._worker.count_tokens(len(whole), 0)
        return results
