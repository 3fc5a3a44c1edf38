"""A chat session: system prompt, history, the JSONL log, save/load, and trimming to fit the context.

Log file (one per session, `chatlogs/chat_<UTC time>_<pid>.jsonl`), one JSON object per line:
  {"type": "session", "model": ..., "started": ..., "system": ...}   first line
  {"type": "message", "role": "user"|"assistant", "content": ..., "time": ...}
  {"type": "event", "event": "clear"|"load"|"trim"|"interrupted", "detail": ..., "time": ...}
Saved sessions (`/s FILE`) are JSON: {"model": ..., "messages": [{"role", "content"}, ...]} (system first).
`/l FILE` reads that, a bare JSON list of messages, or a chat log.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from labrador.errors import DataError
from labrador.files import atomic_write_text, iter_objects
from labrador.llm.base import Message

# The built-in system prompt (`--context default`). Short on purpose: the embedded 135M model answers factual
# questions correctly with it and drifts with longer persona prompts.
DEFAULT_SYSTEM_PROMPT = "You are a helpful AI assistant. Answer briefly and accurately."
ROLES = ("system", "user", "assistant")


def system_prompt(context: str | None) -> str | None:
    """`--context`: "default", "none", a file path, or the prompt text itself."""
    if context is None or context == "default":
        return DEFAULT_SYSTEM_PROMPT
    if context in ("none", ""):
        return None
    path = Path(context).expanduser()
    if len(context) < 4096 and path.is_file():
        from labrador.userfiles import TEXT_FILE, read_text

        return read_text(path, TEXT_FILE).strip()
    return context


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ChatSession:
    def __init__(self, model: str, system: str | None, logs_dir: Path | None) -> None:
        self.model = model
        self.system = system
        self.history: list[Message] = []
        self.logs_dir = logs_dir
        self.log_path: Path | None = None
        self.new()

    # -- log ------------------------------------------------------------------------------------------------
    def _log(self, entry: dict[str, object]) -> None:
        if self.log_path is None:
            return
        with self.log_path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def new(self) -> None:
        """Forget the history and start a new log file."""
        self.history = []
        if self.logs_dir is None:
            return
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")
        self.log_path = self.logs_dir / f"chat_{stamp}_{os.getpid()}.jsonl"
        self._log({"type": "session", "model": self.model, "started": _now(), "system": self.system})

    def event(self, name: str, detail: str = "") -> None:
        self._log({"type": "event", "event": name, "detail": detail, "time": _now()})

    # -- history --------------------------------------------------------------------------------------------
    def messages(self) -> list[Message]:
        system = [{"role": "system", "content": self.system}] if self.system else []
        return system + self.history

    def add(self, role: str, content: str) -> None:
        self.history.append({"role": role, "content": content})
        self._log({"type": "message", "role": role, "content": content, "time": _now()})

    def clear(self) -> None:
        self.history = []
        self.event("clear")

    def drop_oldest_turn(self) -> bool:
        """Remove the oldest user message and the replies before the next one; False when only one is left."""
        users = [i for i, m in enumerate(self.history) if m["role"] == "user"]
        if len(users) < 2:
            return False
        del self.history[:users[1]]
        self.event("trim", "dropped the oldest turn to fit the context window")
        return True

    def fit(self, count_tokens: Callable[[list[Message]], int | None], limit: int) -> int:
        """Drop oldest turns until the prompt takes at most `limit` tokens; the number of turns dropped."""
        dropped = 0
        while (count := count_tokens(self.messages())) is not None and count > limit and self.drop_oldest_turn():
            dropped += 1
        return dropped

    # -- files ----------------------------------------------------------------------------------------------
    def save(self, path: Path) -> Path:
        path = path.expanduser()
        atomic_write_text(path, json.dumps({"model": self.model, "messages": self.messages()}, ensure_ascii=False,
                                           indent=2) + "\n")
        self.event("save", str(path))
        return path

    def load(self, path: Path) -> int:
        """Replace the history (and system prompt, when the file has one); returns the number of messages."""
        messages = read_messages(path.expanduser())
        system = [m["content"] for m in messages if m["role"] == "system"]
        if system:
            self.system = system[-1]
        self.history = [m for m in messages if m["role"] != "system"]
        self.event("load", str(path))
        for message in self.history:
            self._log({"type": "message", "role": message["role"], "content": message["content"], "time": _now()})
        return len(self.history)


def _check(messages: object, where: str) -> list[Message]:
    if not isinstance(messages, list):
        raise DataError(f"{where}: expected a list of messages.")
    checked: list[Message] = []
    for i, message in enumerate(messages):
        if not (isinstance(message, dict) and message.get("role") in ROLES and
                isinstance(message.get("content"), str)):
            raise DataError(f"{where}: message {i + 1} is not an object with role (system, user or assistant) "
                            "and text content.")
        checked.append({"role": message["role"], "content": message["content"]})
    return checked


def read_messages(path: Path) -> list[Message]:
    """Messages from a saved session (JSON) or a chat log (JSONL); DataError naming file and line otherwise."""
    from labrador.userfiles import DATA_FILE, read_text

    text = read_text(path, DATA_FILE)  # a missing, special or non-UTF-8 file: UserFileError naming it
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = None
    if isinstance(data, dict) and "messages" in data:
        return _check(data["messages"], str(path))
    if isinstance(data, list):
        return _check(data, str(path))
    messages: list[Message] = []
    for number, entry in iter_objects(path, "a chat log entry (a saved session is one JSON object; save one "
                                            "with /s FILE)"):
        if entry.get("type") == "event" and entry.get("event") == "clear":
            messages = []
        elif entry.get("type") in ("message", None) and "role" in entry:
            messages += _check([entry], f"{path}:{number}")
    return messages
