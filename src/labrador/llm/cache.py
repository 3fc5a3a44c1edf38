"""The one on-disk call cache: generation (`sdg.teacher`) and evaluation (`eval.calls`) both keep their model
calls here, so that a re-run after a crash repeats no finished call.

An SQLite table `calls(key, value, created, label, request)`: `value` is the cached JSON, `label` and
`request` are kept for inspection and fixture recording. Every `put` is committed at once (autocommit, WAL
journal): a run killed with SIGKILL loses at most the calls in flight, several runs may share one file, and a
torn final line can never happen. Safe to use from several threads. `CallCache(None)` caches nothing.
Files written by earlier versions open as they are: an evaluation cache gains the new columns, and a teacher
cache (columns text, prompt_tokens, completion_tokens, finish) is rewritten once into this layout.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

_TABLE = "CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL, label TEXT, " \
         "request TEXT)"
# A teacher cache of the earlier layout, as the value `sdg.teacher` stores now.
_TEACHER_V1 = "INSERT INTO calls SELECT key, json_object('text', text, 'prompt_tokens', COALESCE(prompt_tokens, 0), " \
              "'completion_tokens', COALESCE(completion_tokens, 0), 'finish', COALESCE(finish, 'stop')), created, " \
              "label, request FROM calls_v1"


def digest(obj: Any) -> str:
    """A cache key: SHA-256 of the canonical JSON of `obj` (sorted keys, UTF-8 kept)."""
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class CallCache:
    """key -> JSON value in SQLite, with hit and miss counters."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self.hits = 0
        self.misses = 0
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._upgrade(self._db)

    @staticmethod
    def _upgrade(db: sqlite3.Connection) -> None:
        have = {row[1] for row in db.execute("PRAGMA table_info(calls)")}
        if "text" in have:  # a teacher cache of the earlier layout
            db.execute("BEGIN")
            db.execute("ALTER TABLE calls RENAME TO calls_v1")
            db.execute(_TABLE)
            db.execute(_TEACHER_V1)
            db.execute("DROP TABLE calls_v1")
            db.execute("COMMIT")
            return
        db.execute(_TABLE)
        for column, kind in (("created", "REAL"), ("label", "TEXT"), ("request", "TEXT")):
            if have and column not in have:  # an evaluation cache of the earlier layout
                db.execute(f"ALTER TABLE calls ADD COLUMN {column} {kind}")

    def get(self, key: str) -> Any | None:
        if self._db is None:
            return None
        with self._lock:
            row = self._db.execute("SELECT value FROM calls WHERE key = ?", (key,)).fetchone()
            if row is None:
                self.misses += 1
                return None
            self.hits += 1
        return json.loads(row[0])

    def put(self, key: str, value: Any, label: str = "", request: Any = None) -> None:
        if self._db is None:
            return
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?, ?)",
                             (key, json.dumps(value), time.time(), label,
                              None if request is None else json.dumps(request, ensure_ascii=False)))

    def close(self) -> None:
        if self._db is not None:
            with self._lock:
                self._db.close()
            self._db = None
