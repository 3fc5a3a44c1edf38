"""Bad input against a real HTTP teacher on 127.0.0.1: per-leaf isolation of 500s, a hanging endpoint, garbage
output and missing documents, through the real `ilab data generate` command."""

from __future__ import annotations

import itertools
import json
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


class TeacherHandler(BaseHTTPRequestHandler):
    """An OpenAI-compatible teacher whose behaviour depends on a marker in the prompt."""

    counter = itertools.count()

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def _json(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._json(200, {"object": "list", "data": [{"id": "fake-teacher", "object": "model"}]})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body.get("prompt") or json.dumps(body.get("messages"))
        n = next(self.counter)
        if "MODE_500" in prompt:
            self._json(500, {"error": {"message": "internal error"}})
            return
        if "MODE_HANG" in prompt:
            time.sleep(20)
            return
        if "MODE_GARBAGE" in prompt:
            text = "\x00\ufffd}{ ]] lorem ipsum ##### %%%% no structure at all"
        else:
            text = f" How do you say hello number {n} in a polite way?\nAnswer: Good day to you, friend {n}."
        choice = {"index": 0, "finish_reason": "stop"}
        choice.update({"text": text} if "prompt" in body else {"message": {"role": "assistant", "content": text}})
        self._json(200, {"id": f"c{n}", "object": "text_completion", "model": "fake-teacher", "choices": [choice],
                         "usage": {"prompt_tokens": 10, "completion_tokens": 12, "total_tokens": 22}})


@pytest.fixture(scope="module")
def teacher_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), TeacherHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


SKILL = """version: 3
created_by: tester
task_description: Greet people politely. {marker}
seed_examples:
""" + "".join(f"  - question: How do I greet person {i}?\n    answer: Say hello to person {i} kindly.\n"
              for i in range(5))

KNOWLEDGE = """version: 3
created_by: tester
domain: towns
document_outline: A made-up town.
seed_examples:
""" + "".join(f"""  - context: Fact {i} about the town of Brindle.
    questions_and_answers:
      - {{question: Q{i}a about Brindle?, answer: A{i}a.}}
      - {{question: Q{i}b about Brindle?, answer: A{i}b.}}
      - {{question: Q{i}c about Brindle?, answer: A{i}c.}}
""" for i in range(5)) + """document:
  folder: docs
  patterns: ["*.md"]
"""


def make_taxonomy(root: Path, leaves: dict[str, str]) -> Path:
    for rel, marker in leaves.items():
        leaf = root / rel
        leaf.mkdir(parents=True)
        if rel.startswith("knowledge"):
            (leaf / "qna.yaml").write_text(KNOWLEDGE)
            if marker == "WITH_DOCS":  # otherwise there is no docs/ folder: the documents are missing
                (leaf / "docs").mkdir()
                (leaf / "docs" / "brindle.md").write_text("# Brindle\n\n" + "Brindle is a town. " * 200)
        else:
            (leaf / "qna.yaml").write_text(SKILL.format(marker=marker))
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "t"], cwd=root, check=True)
    return root


def generate_args(taxonomy: Path, out: Path, url: str) -> list[str]:
    return ["data", "generate", "--taxonomy-path", str(taxonomy), "--taxonomy-base", "empty", "--output-dir",
            str(out), "--endpoint-url", url, "--sdg-scale-factor", "2", "--timeout", "1", "--num-workers", "4",
            "--seed", "1", "--quiet"]


def test_each_bad_leaf_is_reported_and_the_good_one_completes(tmp_path: Path, teacher_url: str, run_ilab) -> None:
    taxonomy = make_taxonomy(tmp_path / "tax", {
        "compositional_skills/good": "MODE_OK",
        "compositional_skills/errors500": "MODE_500",
        "compositional_skills/hangs": "MODE_HANG",
        "compositional_skills/garbage": "MODE_GARBAGE",
        "knowledge/missing_docs": "",
    })
    started = time.monotonic()
    result = run_ilab(*generate_args(taxonomy, tmp_path / "out", teacher_url), timeout=120)
    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "4 leaf/leaves produced no data" in output
    for leaf in ("errors500", "hangs", "garbage", "missing_docs"):
        assert leaf in output
    assert "FAILED" in output and "could be parsed" in output and "docs" in output
    assert elapsed < 110  # the hanging endpoint was given up on (1 s timeout), not waited on forever
    runs = [p for p in (tmp_path / "out").iterdir()]
    assert len(runs) == 1 and not runs[0].name.startswith(".")
    summary = json.loads((runs[0] / "summary.json").read_text())
    by_leaf = {leaf["leaf"].split("/")[1]: leaf for leaf in summary["leaves"]}
    assert by_leaf["good"]["rows"] >= 5 and by_leaf["good"]["error"] is None
    assert "500" in by_leaf["errors500"]["error"]
    assert "timeout" in by_leaf["hangs"]["error"] or "no answer" in by_leaf["hangs"]["error"]
    node = next(runs[0].glob("node_datasets_*/compositional_skills_good.jsonl"))
    assert len(node.read_text().splitlines()) == by_leaf["good"]["rows"]


def test_exit_zero_when_every_leaf_produced_data(tmp_path: Path, teacher_url: str, run_ilab) -> None:
    taxonomy = make_taxonomy(tmp_path / "tax", {"compositional_skills/good": "MODE_OK",
                                                "knowledge/brindle": "WITH_DOCS"})
    result = run_ilab(*generate_args(taxonomy, tmp_path / "out", teacher_url), timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    listed = run_ilab("data", "list", "--output-dir", str(tmp_path / "out"), "--json")
    runs = json.loads(listed.stdout)
    assert len(runs) == 1 and runs[0]["generated"] >= 10 and runs[0]["pipeline"] == "simple"
    assert runs[0]["teacher"] == "fake-teacher" and runs[0]["test"] == 5 + 15 and runs[0]["knowledge"] >= 5
    # the alias `ilab generate` is the same command
    again = run_ilab(*generate_args(taxonomy, tmp_path / "out2", teacher_url)[1:], timeout=60)
    assert again.returncode == 0, again.stderr


def test_bad_options_are_clear_errors(tmp_path: Path, run_ilab) -> None:
    taxonomy = make_taxonomy(tmp_path / "tax", {"compositional_skills/good": "MODE_OK"})
    result = run_ilab("data", "generate", "--taxonomy-path", str(taxonomy), "--taxonomy-base", "empty",
                      "--pipeline", str(tmp_path / "nope"), "--output-dir", str(tmp_path / "o"))
    assert result.returncode == 1 and "not a built-in pipeline" in result.stderr
    assert "Traceback" not in result.stderr
    result = run_ilab("data", "generate", "--taxonomy-path", str(taxonomy), "--taxonomy-base", "HEAD",
                      "--pipeline", "simple", "--output-dir", str(tmp_path / "o"))
    assert result.returncode == 1 and "--taxonomy-base empty" in result.stderr
