"""Turn what a user typed (`-m NAME_OR_PATH`) into a model file or directory, or a clear ModelError.

Order: nothing or the embedded name -> the embedded GGUF; an existing path -> that file or directory; a name
under the models directory (the caller passes config `models.models_dir`: this package does not read the
config), with or without `.gguf`; else an error that lists where we looked. A path is validated before any backend loads it, so a truncated GGUF or a text file fails
in one line instead of deep inside llama.cpp or transformers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from labrador.errors import ModelError
from labrador.models.embedded import EMBEDDED_MODEL_NAME, embedded_model_path

ModelFormat = Literal["gguf", "hf"]


@dataclass(frozen=True)
class ResolvedModel:
    path: Path
    format: ModelFormat
    name: str


def check_model_path(path: Path) -> ModelFormat:
    """The format of a model file/directory; ModelError when it is missing, corrupt or not a model."""
    from labrador.models.gguf_meta import read_gguf

    if not path.exists():
        raise ModelError(f"Model path {path} does not exist; check the spelling or run `ilab model list`.")
    if path.is_dir():
        if (path / "config.json").is_file():
            return "hf"
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            read_gguf(ggufs[0])
            return "gguf"
        raise ModelError(f"{path} is a directory but not a model: it has no config.json (Hugging Face format) "
                         f"and {'several' if ggufs else 'no'} .gguf files; pass the model file or directory itself.")
    read_gguf(path)  # raises for text files, truncated and corrupt GGUF
    return "gguf"


def _looks_like_path(text: str) -> bool:
    return text.startswith((".", "/", "~")) or text.endswith(".gguf") or "\\" in text


def model_file(path: Path) -> Path:
    """A directory holding exactly one GGUF resolves to that file (so llama.cpp can open it)."""
    if path.is_dir() and not (path / "config.json").is_file():
        return next(path.glob("*.gguf"))
    return path


def resolve_model(name_or_path: str | Path | None, models_dir: Path | str | None) -> ResolvedModel:
    """Resolve a model name or path; ModelError with the places searched when nothing matches.

    An existing path wins; then a name under `models_dir` (None: names are not looked up in a directory);
    names starting with '.', '/' or '~' are paths only.
    """
    if name_or_path is None or str(name_or_path).strip().lower() in ("", EMBEDDED_MODEL_NAME):
        return ResolvedModel(embedded_model_path(), "gguf", EMBEDDED_MODEL_NAME)
    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.exists():
        fmt = check_model_path(path)
        path = model_file(path)
        return ResolvedModel(path.resolve(), fmt, path.stem if fmt == "gguf" else path.name)
    base = Path(models_dir).expanduser() if models_dir else None
    if base is not None and not (isinstance(name_or_path, Path) or text.startswith((".", "/", "~"))):
        for candidate in (base / text, base / f"{text}.gguf"):
            if candidate.exists():
                fmt = check_model_path(candidate)
                found = model_file(candidate)
                return ResolvedModel(found.resolve(), fmt, text)
    if isinstance(name_or_path, Path) or _looks_like_path(text):
        raise ModelError(f"Model path {path} does not exist (nor in the models directory {base}); check the "
                         "spelling or run `ilab model list`.")
    raise ModelError(f"Model '{text}' not found: it is not an existing path, not the embedded default "
                     f"'{EMBEDDED_MODEL_NAME}', and not in the models directory {base}. Run `ilab model list` to "
                     "see what is available, or `ilab model download` to fetch it.")
