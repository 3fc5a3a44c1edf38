"""The one exception type users see: a clear, actionable message and no traceback."""

from __future__ import annotations


class LabradorError(Exception):
    """An error caused by input or environment, with a message that says what to fix.

    The CLI prints ``str(err)`` as one paragraph and exits with ``exit_code`` (traceback only with --debug).
    """

    exit_code: int = 1

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class ConfigError(LabradorError):
    """config.yaml is missing, malformed or has a wrong key/type."""


class TaxonomyError(LabradorError):
    """A taxonomy file could not be read or validated (the message names file and line)."""


class ModelError(LabradorError):
    """A model path/name could not be resolved or loaded."""


class EndpointError(LabradorError):
    """An inference endpoint could not be reached or answered badly after retries."""


class DataError(LabradorError):
    """A data file (JSONL, dataset) is malformed; the message names file and line."""


class UserFileError(LabradorError):
    """A user-supplied file refused before it is parsed: not a regular file, a link out of its tree, too large,
    not UTF-8, or unreadable.

    ``problem`` is the message without the file's name, worded to follow it ("is not a regular file ..."), so
    a report that shows the file itself (a taxonomy lint line, a document error) can place it after its own
    subject; ``line``/``column`` (1-based) are set where the problem has a place in the file (the problem
    then says where, too)."""

    def __init__(self, path: object, problem: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(f"{path} {problem}")
        self.path, self.problem, self.line, self.column = path, problem, line, column
