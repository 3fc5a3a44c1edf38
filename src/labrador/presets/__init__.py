"""Presets: named sets of settings shipped as package data (`<name>.yaml` here), chosen with `--preset`.

A preset is a partial `labrador.pipeline.settings.PipelineSettings`: sections `generate` (GenerateOptions),
`prepare` (PrepareOptions), `train` (TrainOptions shared by both pipeline phases), `knowledge` and `skills`
(what each pipeline phase changes), and top-level pipeline settings. `ilab model train --preset` uses its
`train` section, `ilab data generate --preset` its `generate` section. A preset states every value a setup was
measured with, even one equal to today's default, so that changing a default never changes that setup.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from labrador.errors import ConfigError
from labrador.files import read_yaml

NO_PRESET = "none"


def preset_names() -> list[str]:
    return sorted(entry.name.removesuffix(".yaml") for entry in resources.files(__name__).iterdir()
                  if entry.name.endswith(".yaml"))


def load_preset(spec: str | None) -> dict[str, Any]:
    """The settings of a bundled preset (by name) or of a YAML file (by path); {} for None or 'none'."""
    if spec is None or spec == NO_PRESET:
        return {}
    path = Path(spec).expanduser()
    if not path.is_file():
        if spec not in preset_names():
            raise ConfigError(f"Unknown preset {spec!r}: give a YAML file or one of {', '.join(preset_names())} "
                              f"(or '{NO_PRESET}').")
        path = Path(str(resources.files(__name__) / f"{spec}.yaml"))
    raw = read_yaml(path, ConfigError)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a preset holds a mapping of settings (generate:, train:, ...).")
    return raw
