"""Inference: one client interface over llama.cpp in-process and OpenAI-compatible endpoints."""

from labrador.llm.base import Completion, LLMClient, Message, SamplingParams

__all__ = ["Completion", "LLMClient", "Message", "SamplingParams", "get_client"]


def get_client(model: str | None = None, *, endpoint_urls: list[str] | None = None, api_key: str | None = None,
               **options) -> LLMClient:
    """Resolve a model name/path or endpoint URLs to a client (implemented in labrador.llm.factory)."""
    from labrador.llm.factory import get_client as _get_client

    return _get_client(model, endpoint_urls=endpoint_urls, api_key=api_key, **options)
