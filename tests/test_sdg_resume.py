"""SIGKILL a real `ilab data generate` halfway; the re-run resumes from the teacher-call cache, succeeds, and\nwrites the same rows as an uninterrupted run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ILAB = str(Path(sys.executable).with_name("ilab"))
SAMPLE = Path(__file__).resolve().parents[1] / "src" / "labrador" / "data" / "sample_taxonomy"


def cached_calls(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    except sqlite3.OperationalError:  # the table is not created yet
        return 0


def read_run(out: Path) -> tuple[dict, list[dict]]:
    runs = [p for p in out.iterdir() if not p.name.startswith(".")]
    assert len(runs) == 1, runs
    summary = json.loads((runs[0] / "summary.json").read_text())
    rows = [json.loads(line) for path in runs[0].glob("messages_*.jsonl") for line in path.read_text().splitlines()]
    return summary, rows


def test_sigkill_halfway_then_rerun_completes_from_cache(tmp_path: Path, isolated_home: Path, run_ilab,
                                                        pipeline_without_facts) -> None:
    taxonomy = tmp_path / "taxonomy"
    shutil.copytree(SAMPLE, taxonomy)
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    for cmd in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "sample"]):
        subprocess.run([*git, *cmd], cwd=taxonomy, check=True)
    pipeline = pipeline_without_facts(tmp_path / "pipeline")  # the resume mechanism is the same for every block
    args = ["data", "generate", "--taxonomy-path", str(taxonomy), "--taxonomy-base", "empty", "--pipeline",
            str(pipeline), "--sdg-scale-factor", "1", "--max-num-tokens", "48", "--chunk-size", "1000", "--seed", "5",
            "--threads", "1", "--num-workers", "2", "--quiet"]
    cache = isolated_home / "cache" / "labrador" / "sdg" / "teacher_cache.sqlite"

    killed_out = tmp_path / "killed"
    proc = subprocess.Popen([ILAB, *args, "--output-dir", str(killed_out)], env=dict(os.environ),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while cached_calls(cache) < 5:
        assert proc.poll() is None, f"generation ended before it could be killed: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "no teacher call finished in time"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = cached_calls(cache)
    # a killed run leaves nothing that looks like a finished dataset
    assert not killed_out.exists() or not list(killed_out.glob("*/messages_*.jsonl"))

    out = tmp_path / "datasets"
    rerun = run_ilab(*args, "--output-dir", str(out), timeout=400)
    assert rerun.returncode == 0, rerun.stderr  # the re-run must succeed, not merely end
    summary, rows = read_run(out)
    stats = summary["teacher_stats"]
    total = sum(b["requests"] for b in summary["blocks"] if b["kind"] == "llm")  # what a fresh run calls
    assert stats["errors"] == 0
    assert stats["cache_hits"] >= done_before  # everything finished before the kill was replayed ...
    assert stats["requests"] == total - stats["cache_hits"]  # ... and only the rest was asked for
    assert stats["requests"] < total
    assert cached_calls(cache) == total  # every sample answered exactly once
    ids = [r["id"] for r in rows]
    assert rows and len(ids) == len(set(ids))  # no duplicated rows

    # an uninterrupted run with its own empty cache writes exactly the same rows: none were lost or changed
    fresh_out = tmp_path / "uninterrupted"
    fresh = run_ilab(*args, "--output-dir", str(fresh_out), timeout=400,
                     env={"XDG_CACHE_HOME": str(tmp_path / "fresh-cache")})
    assert fresh.returncode == 0, fresh.stderr
    fresh_summary, fresh_rows = read_run(fresh_out)
    assert fresh_summary["teacher_stats"]["requests"] == total and fresh_summary["teacher_stats"]["cache_hits"] == 0
    assert rows == fresh_rows
