"""Background servers: `ilab model serve --background`, `ilab process list|stop`, and `ensure_server`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from labrador.serve import background

pytestmark = pytest.mark.slow


def test_background_server_list_reuse_and_stop(run_ilab, isolated_home: Path) -> None:
    started = run_ilab("model", "serve", "--background", "--port", "0", "--threads", "1", timeout=180)
    assert started.returncode == 0, started.stderr
    match = re.search(r"at (http://127\.0\.0\.1:\d+/v1) \(id (\S+), pid (\d+)", started.stdout)
    assert match, started.stdout
    url, record_id, pid = match.group(1), match.group(2), int(match.group(3))
    try:
        assert httpx.get(url.removesuffix("/v1") + "/health").json()["status"] == "ok"

        listed = run_ilab("process", "list")
        assert record_id in listed.stdout and url in listed.stdout
        records = json.loads(run_ilab("process", "list", "--json").stdout)
        assert [(r["id"], r["pid"], r["model"]) for r in records] == [(record_id, pid, "smollm2-135m-instruct")]

        # A library caller asking for the same model gets the running server, not a second one.
        assert background.ensure_server() == url
        assert len(background.list_processes()) == 1

        stopped = run_ilab("process", "stop", record_id)
        assert stopped.returncode == 0 and f"Stopped {record_id}" in stopped.stdout
    finally:
        if background.is_alive(pid):
            os.kill(pid, signal.SIGKILL)
    assert not background.is_alive(pid)
    assert "No background processes" in run_ilab("process", "list").stdout
    log = isolated_home / "data" / "labrador" / "logs" / "processes" / f"{record_id}.log"
    assert "Server stopped." in log.read_text()  # SIGTERM ended it cleanly, not SIGKILL


def test_ensure_server_starts_and_stop_server_stops(isolated_home: Path) -> None:
    url = background.ensure_server(api_key="k", port=0, threads=1)
    record = background.list_processes()[0]
    assert record.model == "smollm2-135m-instruct"
    try:
        models = httpx.get(url + "/models", headers={"Authorization": "Bearer k"}).json()
        assert [m["id"] for m in models["data"]] == ["smollm2-135m-instruct"]
        assert httpx.get(record.health_url).status_code == 401  # the key reached the child
        assert httpx.get(record.health_url, headers={"Authorization": "Bearer k"}).status_code == 200
    finally:
        background.stop_server(url, grace=10)
    assert background.list_processes() == []
    assert not background.is_alive(record.pid)


def test_dead_records_are_pruned_and_unknown_ids_refused(run_ilab, isolated_home: Path) -> None:
    directory = background.processes_dir()
    directory.mkdir(parents=True)
    sleeper = subprocess.Popen([sys.executable, "-c", "pass"])
    sleeper.wait()
    stale = dict(id="serve-1", pid=sleeper.pid, kind="serve", model="m", model_path="/m", backend="llama-cpp",
                 host="127.0.0.1", port=1, url="http://127.0.0.1:1/v1", started="2026-01-01T00:00:00+00:00",
                 log="/dev/null")
    (directory / "serve-1.json").write_text(json.dumps(stale))
    (directory / "junk.json").write_text("{not json")
    assert "No background processes" in run_ilab("process", "list").stdout
    assert list(directory.glob("*.json")) == []
    refused = run_ilab("process", "stop", "serve-1")
    assert refused.returncode == 1 and "No running background process 'serve-1'" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert run_ilab("process", "stop").returncode == 1


def test_background_start_failure_is_one_line(run_ilab, tmp_path: Path) -> None:
    broken = tmp_path / "x.gguf"
    broken.write_text("not a model")
    result = run_ilab("model", "serve", "--background", "--port", "0", "-m", str(broken))
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "not a GGUF model file" in result.stderr
