"""The models directory: list, download (Hugging Face or a local copy), remove.

Layout (as InstructLab's): a GGUF download with `--filename F` lands at `MODELS_DIR/F`; a whole repository
at `MODELS_DIR/ORG/REPO`; a local copy at `MODELS_DIR/NAME`. A model's name is its path relative to the
models directory, which `resolve_model` accepts (with or without `.gguf`).

Downloads and copies are written under `MODELS_DIR/.partial/` and renamed into place at the end, so an
interrupted one never looks like a model; running the same download again resumes it (huggingface_hub
keeps the partial files).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from labrador.errors import LabradorError, ModelError
from labrador.models.embedded import EMBEDDED_MODEL_NAME, embedded_model_path
from labrador.models.info import ModelInfo, model_info

PARTIAL_DIR = ".partial"


@dataclass(frozen=True)
class ModelEntry:
    name: str
    path: Path
    info: ModelInfo | None
    problem: str | None = None  # why the file could not be read (shown instead of failing the whole list)
    embedded: bool = False


def _entry(name: str, path: Path, embedded: bool = False) -> ModelEntry:
    try:
        return ModelEntry(name, path, model_info(path, name), embedded=embedded)
    except LabradorError as err:
        return ModelEntry(name, path, None, str(err), embedded)


def _is_model(path: Path) -> bool:
    if path.name.startswith("."):
        return False
    if path.is_file():
        return path.suffix == ".gguf"
    return path.is_dir() and ((path / "config.json").is_file() or any(path.glob("*.gguf")))


def _candidates(models_dir: Path) -> list[Path]:
    """GGUF files and HF directories up to two levels deep (NAME.gguf, NAME/, ORG/REPO/)."""
    found: list[Path] = []
    for item in sorted(models_dir.iterdir()) if models_dir.is_dir() else []:
        if _is_model(item):
            found.append(item)
        elif item.is_dir() and not item.name.startswith("."):  # an organisation folder
            found.extend(sub for sub in sorted(item.iterdir()) if _is_model(sub))
    return found


def list_models(models_dir: Path) -> list[ModelEntry]:
    """The embedded default first, then every model under `models_dir`."""
    entries: list[ModelEntry] = []
    try:
        entries.append(_entry(EMBEDDED_MODEL_NAME, embedded_model_path(), embedded=True))
    except ModelError as err:
        entries.append(ModelEntry(EMBEDDED_MODEL_NAME, Path("-"), None, str(err), True))
    entries.extend(_entry(path.relative_to(models_dir).as_posix(), path) for path in _candidates(models_dir))
    return entries


def _move_into_place(tmp: Path, target: Path) -> None:
    if target.exists():
        raise ModelError(f"{target} already exists; remove it first with `ilab model remove`.")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp.replace(target)


def copy_local(source: Path, models_dir: Path, name: str | None = None) -> Path:
    """Copy a model file or directory into the models directory after checking it is a readable model."""
    from labrador.models.resolve import check_model_path

    source = source.expanduser()
    check_model_path(source)
    target = models_dir / (name or source.name)
    if source.is_file() and target.suffix != ".gguf":
        target = target.with_name(target.name + ".gguf")
    if target.exists():
        raise ModelError(f"{target} already exists; remove it first with `ilab model remove` or pick another name.")
    tmp = models_dir / PARTIAL_DIR / target.name
    if tmp.exists():
        shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
    tmp.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, tmp)
    else:
        shutil.copy2(source, tmp)
    _move_into_place(tmp, target)
    return target


def _hub_error(repo_id: str, err: Exception) -> ModelError:
    """One line for whatever huggingface_hub raised (most specific classes first: they share bases)."""
    import httpx
    from huggingface_hub import errors

    if isinstance(err, errors.RepositoryNotFoundError):
        return ModelError(f"Hugging Face repository {repo_id} was not found or needs access rights; check the id "
                          "and pass a token with --hf-token (or HF_TOKEN).")
    if isinstance(err, errors.RevisionNotFoundError | errors.RemoteEntryNotFoundError):
        return ModelError(f"{repo_id}: {' '.join(str(err).split()[:25])}; check --revision and --filename.")
    if isinstance(err, errors.HfHubHTTPError):
        return ModelError(f"Cannot download {repo_id}: {' '.join(str(err).split())[:300]}")
    if isinstance(err, errors.OfflineModeIsEnabled | errors.LocalEntryNotFoundError | httpx.TransportError
                  | ConnectionError | TimeoutError):
        return ModelError(f"Cannot download {repo_id} from Hugging Face: no network connection (or HF_HUB_OFFLINE "
                          "is set). Copy the model onto this machine and run `ilab model download --local-path PATH`.")
    return ModelError(f"Cannot download {repo_id}: {type(err).__name__}: {' '.join(str(err).split())[:300]}")


def _hub_reachable(timeout: float = 5.0) -> bool:
    """Quick TCP check of the Hub host, so an offline machine fails at once instead of after ~25 s of
    huggingface_hub retries. HF_HUB_OFFLINE is left to huggingface_hub (it may serve from its cache)."""
    import os
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return True
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    try:
        with socket.create_connection((url.hostname or "huggingface.co", url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def download_from_hub(repo_id: str, models_dir: Path, *, revision: str | None = None, filename: str | None = None,
                      token: str | None = None) -> Path:
    """Download one file (`filename`) or a whole repository snapshot into the models directory."""
    from huggingface_hub import hf_hub_download, snapshot_download
    from huggingface_hub.utils import logging as hub_logging

    target = models_dir / (filename if filename else repo_id)
    if target.exists():
        raise ModelError(f"{target} already exists; remove it first with `ilab model remove`.")
    hub_logging.set_verbosity_error()  # its retry warnings would bury our one-line error
    if not _hub_reachable():
        raise _hub_error(repo_id, ConnectionError("unreachable"))
    staging = models_dir / PARTIAL_DIR / repo_id.replace("/", "--")
    try:
        if filename:
            downloaded = Path(hf_hub_download(repo_id, filename, revision=revision, token=token,
                                              local_dir=staging))
        else:
            downloaded = Path(snapshot_download(repo_id, revision=revision, token=token, local_dir=staging))
    except Exception as err:  # noqa: BLE001 - huggingface_hub raises many types; all become one line
        raise _hub_error(repo_id, err) from None
    if not filename:
        shutil.rmtree(downloaded / ".cache", ignore_errors=True)  # huggingface_hub's resume metadata
    _move_into_place(downloaded, target)
    if not filename:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def remove_model(name: str, models_dir: Path) -> Path:
    """Delete a model from the models directory (never anything outside it, never the embedded default)."""
    if name.strip().lower() == EMBEDDED_MODEL_NAME:
        raise ModelError(f"{EMBEDDED_MODEL_NAME} is the embedded default shipped with labrador and cannot be removed.")
    root = models_dir.resolve()
    for candidate in (models_dir / name, models_dir / f"{name}.gguf"):
        path = candidate.resolve()
        if path.exists() and path != root and root in path.parents:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
            return path
    raise ModelError(f"No model named '{name}' in {models_dir}; run `ilab model list` to see the names.")
