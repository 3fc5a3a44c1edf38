"""XDG locations. Pure stdlib so that CLI start-up stays fast.

Overrides: LABRADOR_CONFIG (the config file), XDG_CONFIG_HOME, XDG_DATA_HOME, XDG_CACHE_HOME.
"""

from __future__ import annotations

import os
from pathlib import Path

APP = "labrador"
DATA_SUBDIRS = ("taxonomy", "datasets", "checkpoints", "models", "chatlogs", "logs", "runs")


def _xdg(var: str, default: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else Path.home() / default


def config_dir() -> Path:
    return _xdg("XDG_CONFIG_HOME", ".config") / APP


def config_file() -> Path:
    override = os.environ.get("LABRADOR_CONFIG")
    return Path(override) if override else config_dir() / "config.yaml"


def data_dir() -> Path:
    return _xdg("XDG_DATA_HOME", ".local/share") / APP


def cache_dir() -> Path:
    """Caches that can be deleted at any time: cloned documents, teacher-call cache, tokenized data."""
    return _xdg("XDG_CACHE_HOME", ".cache") / APP


def data_subdir(name: str) -> Path:
    """One of DATA_SUBDIRS under the data dir (not created here)."""
    return data_dir() / name
