"""`ilab model list|download|remove` and the bad-model-input errors, through the real `ilab` executable."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest


def _error_line(result) -> str:
    """The one line a failing command prints; asserts there is exactly one and no traceback."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ") and "Traceback" not in result.stderr
    return lines[0]


def test_list_shows_embedded_default(run_ilab) -> None:
    result = run_ilab("model", "list")
    assert result.returncode == 0, result.stderr
    assert "smollm2-135m-instruct (default)" in result.stdout
    for cell in ("gguf", "llama", "134.5M", "Q4_1", "8192", "93.8 MB"):
        assert cell in result.stdout


def test_download_copy_list_remove(run_ilab, smollm_gguf: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    copied = run_ilab("model", "download", "--local-path", str(smollm_gguf), "my-smol", "--models-dir", str(models))
    assert copied.returncode == 0, copied.stderr
    assert (models / "my-smol.gguf").is_file() and not any((models / ".partial").iterdir())
    listed = json.loads(run_ilab("model", "list", "--json", "--models-dir", str(models)).stdout)
    assert [row["name"] for row in listed] == ["smollm2-135m-instruct", "my-smol.gguf"]
    assert listed[1]["parameters"] == 134_515_008 and listed[1]["quantization"] == "Q4_1"
    again = run_ilab("model", "download", "--local-path", str(smollm_gguf), "my-smol", "--models-dir", str(models))
    assert again.returncode == 1 and "already exists" in _error_line(again)
    removed = run_ilab("model", "remove", "my-smol", "--models-dir", str(models))
    assert removed.returncode == 0 and not (models / "my-smol.gguf").exists()
    gone = run_ilab("model", "remove", "my-smol", "--models-dir", str(models))
    assert gone.returncode == 1 and "No model named 'my-smol'" in _error_line(gone)


def test_download_without_network_fails_in_one_line(run_ilab, tmp_path: Path) -> None:
    models = tmp_path / "models"
    result = run_ilab("model", "download", "HuggingFaceTB/SmolLM2-135M-Instruct", "--filename", "x.gguf",
                      "--models-dir", str(models))
    assert result.returncode == 1
    assert "no network connection" in _error_line(result)
    assert not (models / "x.gguf").exists()


def test_unreadable_file_in_models_dir_is_listed_not_fatal(run_ilab, tmp_path: Path) -> None:
    (tmp_path / "broken.gguf").write_bytes(b"GGUF\x03\x00\x00\x00")
    result = run_ilab("model", "list", "--models-dir", str(tmp_path))
    assert result.returncode == 0 and "broken.gguf" in result.stdout and "truncated" in result.stdout


@pytest.fixture
def bad_models(tmp_path: Path, smollm_gguf: Path) -> dict[str, Path]:
    truncated = tmp_path / "truncated.gguf"
    with smollm_gguf.open("rb") as src:
        truncated.write_bytes(src.read(5_000_000))  # header intact, tensor data cut off
    text = tmp_path / "notes.txt"
    text.write_text("not a model\n")
    return {"missing": tmp_path / "missing.gguf", "truncated": truncated, "text": text}


@pytest.mark.parametrize(("kind", "message"), [("missing", "does not exist"), ("truncated", "truncated GGUF"),
                                               ("text", "not a GGUF model file")])
def test_bad_model_inputs_one_line_exit_1(run_ilab, bad_models: dict[str, Path], kind: str, message: str) -> None:
    path = str(bad_models[kind])
    commands = [("model", "chat", "-m", path, "-qq", "hi")]
    if kind == "truncated":  # download --local-path validates with the same code as chat's resolution
        commands.append(("model", "download", "--local-path", path))
    for args in commands:
        result = run_ilab(*args)
        assert result.returncode == 1, (args, result.stderr)
        line = _error_line(result)
        assert message in line and path in line


def test_unreachable_endpoint_one_line_exit_1(run_ilab) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run_ilab("model", "chat", "--endpoint-url", f"http://127.0.0.1:{port}/v1", "-qq", "hi")
    assert result.returncode == 1
    assert f"127.0.0.1:{port}" in _error_line(result)
