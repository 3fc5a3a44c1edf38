"""The one retry/backoff policy for model calls (tenacity), used by sync and async requests alike.

Connection errors, timeouts, HTTP 429 and 5xx are `Retryable`: they are retried with exponential backoff
(`backoff * 2**attempt` seconds, jittered, capped at 30 s; a 429's Retry-After is honoured up to the same cap).
Any other exception fails at once. After the last attempt `give_up(error, attempts)` builds the error raised.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from tenacity import RetryCallState, retry_if_exception_type, stop_after_attempt

MAX_BACKOFF_S = 30.0


class Retryable(Exception):
    """A failure worth another attempt; `where` names the server, `retry_after` its requested delay."""

    def __init__(self, message: str, where: str = "", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.where = where
        self.retry_after = retry_after


def policy(max_retries: int, backoff: float, give_up: Callable[[Retryable, int], Exception]) -> dict[str, Any]:
    """Keyword arguments for `tenacity.Retrying` / `tenacity.AsyncRetrying`."""

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, Retryable) and error.retry_after is not None:
            return min(error.retry_after, MAX_BACKOFF_S)
        return min(backoff * 2 ** (state.attempt_number - 1), MAX_BACKOFF_S) * random.uniform(0.75, 1.0)

    def fail(state: RetryCallState) -> Any:
        error = state.outcome.exception() if state.outcome else None
        assert isinstance(error, Retryable)
        raise give_up(error, state.attempt_number) from None

    return {"stop": stop_after_attempt(max(0, max_retries) + 1), "wait": wait,
            "retry": retry_if_exception_type(Retryable), "retry_error_callback": fail}
