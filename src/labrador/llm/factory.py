"""`get_client`: pick the backend for a model name, path or endpoint list.

- endpoint_urls given -> `OpenAIHTTPClient` (any OpenAI-compatible server; `model` is the name sent in
  requests, or the server's first `/v1/models` entry when None).
- a GGUF file, or a name resolving to one (the embedded default when `model` is None) -> `LlamaCppClient`.
- a Hugging Face directory -> `VLLMClient` when CUDA and vllm are importable, else `TransformersClient` (CPU).
  `backend="llama-cpp"|"vllm"|"transformers"|"auto"` forces a choice.

Options not used by the chosen backend are ignored, so one call site can pass e.g. `timeout` and `n_ctx` for
whatever model the user picked; unknown option names raise TypeError to catch typos.
"""

from __future__ import annotations

from typing import Any

from labrador.errors import LabradorError, ModelError
from labrador.llm.base import LLMClient

# option name -> the backends that use it
OPTIONS: dict[str, tuple[str, ...]] = {
    "n_ctx": ("llama-cpp", "transformers", "vllm"),
    "n_threads": ("llama-cpp", "transformers"),
    "n_batch": ("llama-cpp",),
    "chat_template": ("llama-cpp", "transformers", "vllm"),
    "model_name": ("llama-cpp", "transformers", "vllm"),
    "timeout": ("http",),
    "max_retries": ("http",),
    "backoff": ("http",),
    "max_concurrency": ("http",),
    "gpu_memory_utilization": ("vllm",),
}
BACKENDS = ("auto", "llama-cpp", "vllm", "transformers")


def _options_for(backend: str, options: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if backend in OPTIONS[k] and v is not None}


def vllm_available() -> bool:
    """True when vllm can be imported and torch sees a CUDA device (vLLM needs a GPU)."""
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        return False
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001 - a broken torch install means no GPU backend
        return False


def get_client(model: str | None = None, *, endpoint_urls: list[str] | None = None, api_key: str | None = None,
               **options: Any) -> LLMClient:
    backend = options.pop("backend", None) or "auto"
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise TypeError(f"get_client: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(OPTIONS))}")
    if backend not in BACKENDS:
        raise LabradorError(f"Unknown backend '{backend}'; choose one of {', '.join(BACKENDS)}.")
    if endpoint_urls:
        from labrador.llm.openai_http import OpenAIHTTPClient

        return OpenAIHTTPClient(list(endpoint_urls), model=model, api_key=api_key, **_options_for("http", options))

    from labrador.models.resolve import resolve_model

    resolved = resolve_model(model)
    options.setdefault("model_name", resolved.name)
    if resolved.format == "gguf":
        if backend not in ("auto", "llama-cpp"):
            raise ModelError(f"{resolved.path} is a GGUF file, which only the llama-cpp backend can run; convert "
                             f"it with `ilab model convert` to use the {backend} backend.")
        from labrador.llm.llama_cpp import LlamaCppClient

        return LlamaCppClient(resolved.path, **_options_for("llama-cpp", options))
    if backend == "llama-cpp":
        raise ModelError(f"{resolved.path} is a Hugging Face directory; llama.cpp needs GGUF: convert it with "
                         "`ilab model convert` first, or use the transformers/vllm backend.")
    if backend == "vllm" and not vllm_available():
        raise ModelError("The vllm backend needs the `vllm` package and a CUDA GPU, and this machine lacks one "
                         "of them; use --backend transformers (CPU) or convert the model to GGUF for llama.cpp.")
    if backend == "vllm" or (backend == "auto" and vllm_available()):
        from labrador.llm.vllm import VLLMClient

        return VLLMClient(resolved.path, **_options_for("vllm", options))
    from labrador.llm.transformers_backend import TransformersClient

    return TransformersClient(resolved.path, **_options_for("transformers", options))
