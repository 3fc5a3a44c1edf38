"""The interactive chat loop: read a line, stream the answer as rendered markdown, handle slash commands."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.markdown import Markdown

from labrador.chat.session import ChatSession
from labrador.chat.stream import Streamer
from labrador.errors import LabradorError
from labrador.llm.base import ContextOverflow, SamplingParams, looks_like_overflow

HELP = """\
Commands:
  /q          quit (also Ctrl+D at the prompt)
  /h          this help
  /c          clear the history (keep the system prompt)
  /m          toggle multi-line input: end a message with a line holding only "." (or Ctrl+D)
  /n          new session: clear the history and start a new log file
  /l FILE     load a session (saved JSON or a chat log) instead of the current history
  /s FILE     save the session as JSON
Ctrl+C stops an answer that is being generated."""


@dataclass
class ChatLoop:
    streamer: Streamer
    session: ChatSession
    params: SamplingParams
    console: Console
    multiline: bool = False

    # -- input ----------------------------------------------------------------------------------------------
    def read(self) -> str | None:
        """One message (None at end of input)."""
        try:
            first = input(">>> ")
        except EOFError:
            return None
        if not self.multiline or first.startswith("/"):
            return first
        lines = [first]
        while lines[-1] != ".":
            try:
                lines.append(input("... "))
            except EOFError:
                break
        return "\n".join(line for line in lines if line != ".")

    # -- commands ----------------------------------------------------------------------------------------
    def command(self, line: str) -> bool:
        """Run a slash command; False when the chat should end."""
        name, _, arg = line.strip().partition(" ")
        arg = arg.strip()
        if name in ("/q", "/quit", "/exit"):
            return False
        if name in ("/h", "/help"):
            self.console.print(HELP, markup=False, highlight=False)
        elif name == "/c":
            self.session.clear()
            self.console.print("History cleared.")
        elif name == "/m":
            self.multiline = not self.multiline
            state = 'on: end a message with a line holding only "."' if self.multiline else "off"
            self.console.print(f"Multi-line input {state}.", markup=False)
        elif name == "/n":
            self.session.new()
            self.console.print(f"New session (log: {self.session.log_path}).", markup=False)
        elif name in ("/s", "/l") and not arg:
            self.console.print(f"Usage: {name} FILE", markup=False)
        elif name == "/s":
            self.console.print(f"Saved to {self.session.save(Path(arg))}.", markup=False)
        elif name == "/l":
            count = self.session.load(Path(arg))
            self.console.print(f"Loaded {count} messages from {arg}.", markup=False)
        else:
            self.console.print(f"Unknown command {name}; /h lists the commands.", markup=False)
        return True

    # -- answers ---------------------------------------------------------------------------------------------
    def _fit_context(self) -> None:
        context = self.streamer.context_length
        if not context:
            return
        reserve = min(self.params.max_tokens, context // 2)
        dropped = self.session.fit(self.streamer.prompt_tokens, context - reserve)
        if dropped:
            self.console.print(f"[context full: dropped the {dropped} oldest turn(s)]", markup=False, style="dim")

    def _render(self, cancel: threading.Event) -> str:
        text = ""
        pieces = self.streamer.stream(self.session.messages(), self.params, cancel)
        try:
            if not self.console.is_terminal:
                for piece in pieces:
                    text += piece
                    self.console.file.write(piece)
                    self.console.file.flush()
                self.console.file.write("\n")
                return text
            with Live(Markdown(""), console=self.console, refresh_per_second=12,
                      vertical_overflow="visible") as live:
                for piece in pieces:
                    text += piece
                    live.update(Markdown(text))
        finally:
            cancel.set()
            pieces.close()
        return text

    def answer(self, question: str) -> None:
        self.session.add("user", question)
        while True:
            self._fit_context()
            cancel = threading.Event()
            try:
                text = self._render(cancel)
                break
            except KeyboardInterrupt:
                self.console.print("[answer stopped]", markup=False, style="dim")
                self.session.event("interrupted")
                return
            except LabradorError as err:
                if not (isinstance(err, ContextOverflow) or looks_like_overflow(str(err))):
                    raise
                if not self.session.drop_oldest_turn():
                    self.session.history.pop()
                    self.console.print(f"Your message does not fit in the model's context window ({err}); "
                                       "shorten it.", markup=False, style="red")
                    return
                self.console.print("[context full: dropped the oldest turn]", markup=False, style="dim")
        self.session.add("assistant", text)

    def run(self, banner: str) -> None:
        self.console.print(banner, markup=False, highlight=False)
        while True:
            try:
                line = self.read()
            except KeyboardInterrupt:
                self.console.print()
                continue
            if line is None:
                break
            if not line.strip():
                continue
            try:
                if line.startswith("/"):
                    if not self.command(line):
                        break
                else:
                    self.answer(line)
            except LabradorError as err:  # a bad /l file or a lost endpoint: say so and keep chatting
                self.console.print(f"Error: {err}", markup=False, style="red")
        self.console.print(f"Bye. This session is logged in {self.session.log_path}.", markup=False)
