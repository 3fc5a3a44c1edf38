"""Backend choice in `get_client` (no model is loaded: every case here fails before loading)."""

from __future__ import annotations

from pathlib import Path

import pytest

from labrador.errors import LabradorError, ModelError
from labrador.llm import get_client
from labrador.llm.factory import vllm_available


@pytest.fixture
def hf_dir(tmp_path: Path) -> Path:
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text("{}")
    return tmp_path / "hf"


def test_forced_backend_must_fit_the_format(hf_dir: Path, smollm_gguf: Path) -> None:
    with pytest.raises(ModelError, match="only the llama-cpp backend"):
        get_client(str(smollm_gguf), backend="transformers")
    with pytest.raises(ModelError, match="llama.cpp needs GGUF"):
        get_client(str(hf_dir), backend="llama-cpp")
    assert not vllm_available()  # the CI machine has no GPU: an explicit vllm request says why it cannot run
    with pytest.raises(ModelError, match="needs the `vllm` package and a CUDA GPU"):
        get_client(str(hf_dir), backend="vllm")


def test_unknown_backend_and_option() -> None:
    with pytest.raises(LabradorError, match="Unknown backend 'gpu'"):
        get_client(None, backend="gpu")
    with pytest.raises(TypeError, match="unknown option"):
        get_client(None, n_thread=2)


def test_missing_model_fails_before_loading(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        get_client(str(tmp_path / "nope.gguf"))
