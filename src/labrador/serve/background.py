"""Servers running in the background: start, list, stop; `ensure_server` for commands that need one.

Each background server is a detached `ilab model serve` process (its own session, so Ctrl+C in the terminal
that started it does not stop it) with a record `<id>.json` and a log `<id>.log` in
`<data dir>/logs/processes/`. Records whose process is gone are pruned whenever the list is read. The API key
is handed to the child in the environment, never written to the record or the command line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path

from labrador import paths
from labrador.errors import LabradorError
from labrador.files import atomic_write_json

API_KEY_ENV = "LABRADOR_API_KEY"
_children: dict[int, subprocess.Popen[bytes]] = {}  # servers this process started (so it can reap them)


@dataclass
class ProcessRecord:
    id: str
    pid: int
    kind: str
    model: str
    model_path: str
    backend: str
    host: str
    port: int
    url: str  # OpenAI base URL (ends in /v1)
    started: str  # ISO 8601, UTC
    log: str

    @property
    def health_url(self) -> str:
        return self.url.removesuffix("/v1") + "/health"


def processes_dir() -> Path:
    return paths.data_subdir("logs") / "processes"


def _record_path(record_id: str) -> Path:
    return processes_dir() / f"{record_id}.json"


def _save(record: ProcessRecord) -> None:
    atomic_write_json(_record_path(record.id), asdict(record), indent=2)


def _load(path: Path) -> ProcessRecord | None:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return ProcessRecord(**{f.name: raw[f.name] for f in fields(ProcessRecord)})
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_alive(pid: int) -> bool:
    """True while `pid` runs a labrador process (a zombie, or a reused pid running something else, is dead)."""
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path(f"/proc/{pid}")
    if not proc.exists():  # no procfs (macOS): the signal check is all we have
        return True
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = (proc / "cmdline").read_bytes()
    except (OSError, IndexError):
        return False
    return state != "Z" and (b"labrador" in cmdline or b"ilab" in cmdline or b"vllm" in cmdline)


def list_processes() -> list[ProcessRecord]:
    """Running background processes, oldest first; records of dead ones are deleted."""
    alive = []
    for path in sorted(processes_dir().glob("*.json")):  # none when the directory does not exist yet
        record = _load(path)
        if record is not None and is_alive(record.pid):
            alive.append(record)
        else:
            path.unlink(missing_ok=True)
    return sorted(alive, key=lambda r: r.started)


def find_process(key: str) -> ProcessRecord:
    """A running process by id or pid; LabradorError naming what is running otherwise."""
    running = list_processes()
    for record in running:
        if key in (record.id, str(record.pid)):
            return record
    names = ", ".join(r.id for r in running) or "none"
    raise LabradorError(f"No running background process '{key}' (running: {names}); see `ilab process list`.")


def _health(url: str, api_key: str | None, timeout: float = 2.0) -> int | None:
    """The HTTP status of GET url, or None when nothing answers."""
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        return httpx.get(url, headers=headers, timeout=timeout).status_code
    except httpx.HTTPError:
        return None


def _log_tail(log: Path) -> str:
    """The child's last error line: what `ilab model serve` printed before it gave up."""
    try:
        lines = [line.strip() for line in log.read_text(encoding="utf-8", errors="replace").splitlines()]
    except OSError:
        return "no log was written"
    lines = [line for line in lines if line]
    errors = [line for line in lines if line.startswith(("Error:", "Internal error:"))]
    return (errors or lines or ["the log is empty"])[-1]


def _free_id(port: int) -> str:
    record_id = f"serve-{port}"
    return record_id if not _record_path(record_id).exists() else f"serve-{port}-{os.getpid()}"


def start_server(model: str | None = None, *, host: str = "127.0.0.1", port: int = 0, backend: str = "auto",
                 api_key: str | None = None, max_ctx_size: int | None = None, threads: int | None = None,
                 chat_template: str | None = None, backend_args: tuple[str, ...] = (),
                 http_flags: tuple[str, ...] = (), timeout: float = 300.0) -> ProcessRecord:
    """Start `ilab model serve` detached; return once /health answers (LabradorError when it fails to start).
    `http_flags`: `ilab model serve` limit flags (`--max-connections=64`), passed as given."""
    from labrador.llm.factory import resolve

    resolved = resolve(model)  # fail here, in one line, for a bad model
    model_path, name = resolved.path, resolved.name
    directory = processes_dir()
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    log = directory / f"serve-{stamp}-{os.getpid()}-{time.monotonic_ns() % 100000}.log"
    ready = log.with_suffix(".ready")
    # The child resolves the same name itself (same cwd, config and environment), so it serves it under the
    # same public name (`smollm2-135m-instruct`, not the file's stem).
    command = [sys.executable, "-m", "labrador.cli.main", "model", "serve", "--model", model or name,
               "--host", host, "--port", str(port), "--backend", backend, "--ready-file", str(ready)]
    for flag, value in (("--max-ctx-size", max_ctx_size), ("--threads", threads),
                        ("--chat-template", chat_template)):
        if value is not None:
            command += [flag, str(value)]
    command += [*http_flags, *(f"--backend-args={arg}" for arg in backend_args)]
    env = dict(os.environ)
    env.pop(API_KEY_ENV, None)
    if api_key:
        env[API_KEY_ENV] = api_key
    with log.open("wb") as out:
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                                 start_new_session=True)
    _children[child.pid] = child
    deadline = time.monotonic() + timeout
    try:
        info = _wait_ready(child, ready, log, deadline)
        record = ProcessRecord(id=_free_id(info["port"]), pid=child.pid, kind="serve", model=name,
                               model_path=str(model_path), backend=info["backend"], host=host, port=info["port"],
                               url=info["url"], started=datetime.now(UTC).isoformat(timespec="seconds"),
                               log=str(log))
        while _health(record.health_url, api_key) != 200:
            if child.poll() is not None or time.monotonic() > deadline:
                raise LabradorError(f"The server for {name} did not answer {record.health_url} "
                                    f"({_log_tail(log)}); full log: {log}")
            time.sleep(0.1)
    except BaseException:
        _terminate(child.pid, grace=5.0)
        raise
    finally:
        ready.unlink(missing_ok=True)
    _save(record)
    final_log = directory / f"{record.id}.log"
    log.replace(final_log)  # the child keeps writing to the same open file
    record.log = str(final_log)
    _save(record)
    return record


def _wait_ready(child: subprocess.Popen[bytes], ready: Path, log: Path, deadline: float) -> dict:
    while not ready.exists():
        if child.poll() is not None:
            raise LabradorError(f"The server exited before it was ready: {_log_tail(log)} (log: {log})")
        if time.monotonic() > deadline:
            raise LabradorError(f"The server did not start in time; see its log {log}.")
        time.sleep(0.05)
    return json.loads(ready.read_text(encoding="utf-8"))


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while is_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _terminate(pid: int, grace: float) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds; reap it when it is our child."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        if _wait_gone(pid, wait):
            break
    child = _children.pop(pid, None)
    if child is not None:
        child.wait()


def stop_process(record: ProcessRecord, grace: float = 10.0) -> None:
    _terminate(record.pid, grace)
    _record_path(record.id).unlink(missing_ok=True)


def ensure_server(model: str | None = None, *, api_key: str | None = None, **options: object) -> str:
    """The OpenAI base URL of a running background server for `model`, starting one if none answers.

    `options` are start_server's keywords (host, port, backend, max_ctx_size, ...). Stop it with stop_server.
    """
    from labrador.llm.factory import resolve

    model_path = resolve(model).path
    for record in list_processes():
        if record.kind == "serve" and record.model_path == str(model_path) and \
                _health(record.health_url, api_key) == 200:
            return record.url
    return start_server(model, api_key=api_key, **options).url  # type: ignore[arg-type]


def stop_server(key: str, grace: float = 10.0) -> None:
    """Stop a background server given its id, pid or base URL."""
    for record in list_processes():
        if key in (record.id, str(record.pid), record.url, record.url.removesuffix("/v1")):
            stop_process(record, grace)
            return
    raise LabradorError(f"No running background server '{key}'; see `ilab process list`.")
