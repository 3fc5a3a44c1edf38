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

from typing import TYPE_CHECKING, Any

from labrador.errors import LabradorError, ModelError
from labrador.llm.base import LLMClient
from labrador.llm.vllm import vllm_available

if TYPE_CHECKING:
    from labrador.models.resolve import ResolvedModel

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


def resolve(model: str | None) -> ResolvedModel:
    """A model name or path as a file or directory, names looked up in the configured models directory."""
    from labrador.config import load_config
    from labrador.models.resolve import resolve_model

    return resolve_model(model, load_config().models.models_dir)


def choose_backend(model_format: str, path: object, backend: str = "auto") -> str:
    """The engine for a resolved model: "llama-cpp", "vllm" or "transformers" (ModelError when `backend`
    cannot run this format on this machine)."""
    if backend not in BACKENDS:
        raise LabradorError(f"Unknown backend '{backend}'; choose one of {', '.join(BACKENDS)}.")
    if model_format == "gguf":
        if backend not in ("auto", "llama-cpp"):
            raise ModelError(f"{path} is a GGUF file, which only the llama-cpp backend can run; convert "
                             f"it with `ilab model convert` to use the {backend} backend.")
        return "llama-cpp"
    if backend == "llama-cpp":
        raise ModelError(f"{path} is a Hugging Face directory; llama.cpp needs GGUF: convert it with "
                         "`ilab model convert` first, or use the transformers/vllm backend.")
    if backend == "vllm" and not vllm_available():
        raise ModelError("The vllm backend needs the `vllm` package and a CUDA GPU, and this machine lacks one "
                         "of them; use --backend transformers (CPU) or convert the model to GGUF for llama.cpp.")
    return "vllm" if backend == "vllm" or (backend == "auto" and vllm_available()) else "transformers"


def get_client(model: str | None = None, *, endpoint_urls: list[str] | None = None, api_key: str | None = None,
               **options: Any) -> LLMClient:
    backend = options.pop("backend", None) or "auto"
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise TypeError(f"get_client: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(OPTIONS))}")
    if endpoint_urls:
        from labrador.llm.openai_http import OpenAIHTTPClient

        return OpenAIHTTPClient(list(endpoint_urls), model=model, api_key=api_key, **_options_for("http", options))

    resolved = resolve(model)
    options.setdefault("model_name", resolved.name)
    kind = choose_backend(resolved.format, resolved.path, backend)
    if kind == "llama-cpp":
        from labrador.llm.llama_cpp import LlamaCppClient

        return LlamaCppClient(resolved.path, **_options_for(kind, options))
    if kind == "vllm":
        from labrador.llm.vllm import VLLMClient

        return VLLMClient(resolved.path, **_options_for(kind, options))
    from labrador.llm.transformers_backend import TransformersClient

    return TransformersClient(resolved.path, **_options_for(kind, options))
