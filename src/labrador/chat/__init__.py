"""`ilab model chat`: terminal chat with streaming markdown, slash commands and JSONL session logs."""

from labrador.chat.connect import ask_once, connect, probe_endpoint
from labrador.chat.session import DEFAULT_SYSTEM_PROMPT, ChatSession, system_prompt

__all__ = ["DEFAULT_SYSTEM_PROMPT", "ChatSession", "ask_once", "connect", "probe_endpoint", "system_prompt"]
