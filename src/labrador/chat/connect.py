"""Open the model a chat talks to: an OpenAI-compatible endpoint (checked first) or a model in-process."""

from __future__ import annotations

from labrador.chat.stream import Streamer
from labrador.errors import EndpointError
from labrador.llm.base import LLMClient, Message, SamplingParams


def probe_endpoint(url: str, api_key: str | None, timeout: float = 5.0) -> tuple[str, list[str]]:
    """(OpenAI base URL, served model names); EndpointError in one line when nothing usable answers.

    Accepts the base URL with or without the trailing /v1. One quick request, no retries: a chat user who
    mistyped the port should know at once.
    """
    import httpx

    base = url.rstrip("/")
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    status = 0
    for candidate in [base] if base.endswith("/v1") else [base, base + "/v1"]:
        try:
            reply = httpx.get(candidate + "/models", headers=headers, timeout=timeout)
        except (httpx.HTTPError, httpx.InvalidURL) as err:
            reason = "connection refused" if isinstance(err, httpx.ConnectError) else str(err) or type(err).__name__
            raise EndpointError(f"Cannot reach the endpoint {url} ({reason}); start a server with `ilab model "
                                "serve` or check the URL and port.") from None
        status = reply.status_code
        if status == 401:
            raise EndpointError(f"The endpoint {url} refused the API key (401); pass the right one with --api-key.")
        if status == 200:
            try:
                names = [str(m["id"]) for m in reply.json().get("data", [])]
            except (ValueError, KeyError, TypeError, AttributeError):
                names = []
            return candidate, names
    raise EndpointError(f"The endpoint {url} does not look OpenAI-compatible (GET /models answered {status}); pass "
                        "its base URL, e.g. http://127.0.0.1:8000/v1.")


def connect(model: str | None, endpoint_url: str | None = None, api_key: str | None = None,
            n_threads: int | None = None) -> tuple[LLMClient, Streamer, str]:
    """(client, streamer, model name). With an endpoint, `model` None means the first model it serves."""
    from labrador.llm import get_client

    if endpoint_url:
        base, names = probe_endpoint(endpoint_url, api_key)
        name = model or (names[0] if names else "default")
        client = get_client(name, endpoint_urls=[base], api_key=api_key)
        return client, Streamer(client), name
    client = get_client(model, n_threads=n_threads)
    return client, Streamer(client), client.model_name


def ask_once(client: LLMClient, question: str, system: str | None, params: SamplingParams) -> str:
    """One answer, no history (`ilab model chat -qq`)."""
    messages: list[Message] = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": question})
    return client.chat(messages, params).text.strip()
