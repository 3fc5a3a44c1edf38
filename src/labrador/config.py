"""config.yaml: pydantic-validated settings, one section per command family.

Every field has a default, so a missing file or section is fine; an unknown key or a wrong type is an error
that names the key's path and the expected type. CLI options override config values. The generation and
training options (sizes, epochs, learning rates) are null here unless the file sets them: their defaults are
written once, in `labrador.sdg.context.GenerateOptions` and `labrador.train.options.TrainOptions`
(see `layered`, which stacks model defaults, config values, a preset and CLI options).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from labrador import paths
from labrador.errors import ConfigError
from labrador.files import read_yaml
from labrador.models.embedded import EMBEDDED_MODEL_NAME

DEFAULT_TAXONOMY_REPO = "https://github.com/instructlab/taxonomy.git"
M = TypeVar("M", bound=BaseModel)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class GeneralConfig(Section):
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    debug: bool = False


class ChatConfig(Section):
    model: str = EMBEDDED_MODEL_NAME
    context: str = "default"
    greedy: bool = False
    max_tokens: int | None = None
    logs_dir: str = Field(default_factory=lambda: str(paths.data_subdir("chatlogs")))


class OptionsSection(Section):
    """A section whose option keys are null unless the file sets them: the options model has the defaults."""

    PLACES: ClassVar[frozenset[str]] = frozenset()  # keys that are not options of the model (models, paths)
    RENAMED: ClassVar[dict[str, str]] = {}  # this file's key -> the options model's field

    def options(self) -> dict[str, Any]:
        """The option values this file sets, by the options model's field names."""
        values = self.model_dump(exclude=set(self.PLACES))  # a None value stands for 'not given'
        return {self.RENAMED.get(key, key): value for key, value in values.items() if value is not None}


class GenerateConfig(OptionsSection):
    """`ilab data generate`; the options are labrador.sdg.context.GenerateOptions'."""

    PLACES = frozenset({"pipeline", "teacher", "endpoint_urls", "taxonomy_path", "taxonomy_base", "output_dir"})
    RENAMED = {"sdg_scale_factor": "scale_factor"}

    pipeline: str = "simple"
    teacher: str = EMBEDDED_MODEL_NAME
    endpoint_urls: list[str] = Field(default_factory=list)
    taxonomy_path: str = Field(default_factory=lambda: str(paths.data_subdir("taxonomy")))
    taxonomy_base: str = "origin/main"
    output_dir: str = Field(default_factory=lambda: str(paths.data_subdir("datasets")))
    seed: int | None = None
    sdg_scale_factor: int | None = Field(default=None, ge=1)
    chunk_size: int | None = Field(default=None, ge=50)
    max_num_tokens: int | None = Field(default=None, ge=64)
    num_workers: int | None = Field(default=None, ge=1)


class ServeConfig(Section):
    model: str = EMBEDDED_MODEL_NAME
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    backend: Literal["auto", "llama-cpp", "vllm", "transformers"] = "auto"
    max_ctx_size: int = Field(default=4096, ge=128)
    backend_args: list[str] = Field(default_factory=list)
    # HTTP limits (docs/serve_chat.md): seconds to send a request head, seconds of silence allowed inside a
    # body, open connections served before new requests get 503. Null unless the file sets them: the defaults
    # are written once, in labrador.serve.connections.ConnectionLimits
    header_timeout: float | None = Field(default=None, gt=0, le=3600)
    body_timeout: float | None = Field(default=None, gt=0, le=3600)
    max_connections: int | None = Field(default=None, ge=1, le=100_000)


class TrainConfig(OptionsSection):
    """`ilab model train`; the options are labrador.train.options.TrainOptions'."""

    PLACES = frozenset({"model", "data_path", "ckpt_output_dir"})

    model: str = EMBEDDED_MODEL_NAME
    data_path: str = Field(default_factory=lambda: str(paths.data_subdir("datasets")))
    ckpt_output_dir: str = Field(default_factory=lambda: str(paths.data_subdir("checkpoints")))
    pipeline: Literal["simple", "full", "accelerated"] | None = None
    num_epochs: int | None = Field(default=None, ge=1)
    learning_rate: float | None = Field(default=None, gt=0)
    effective_batch_size: int | None = Field(default=None, ge=1)
    max_seq_len: int | None = Field(default=None, ge=32)
    max_batch_len: int | None = Field(default=None, ge=32)
    lora_rank: int | None = Field(default=None, ge=0)
    seed: int | None = None


class EvaluateConfig(Section):
    model: str | None = None
    base_model: str = EMBEDDED_MODEL_NAME
    judge_model: str | None = None
    output_dir: str = Field(default_factory=lambda: str(paths.data_subdir("logs") / "eval"))
    few_shots: int = Field(default=5, ge=0)


class ModelsConfig(Section):
    models_dir: str = Field(default_factory=lambda: str(paths.data_subdir("models")))


class Config(Section):
    general: GeneralConfig = Field(default_factory=GeneralConfig)
    chat: ChatConfig = Field(default_factory=ChatConfig)
    generate: GenerateConfig = Field(default_factory=GenerateConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    models: ModelsConfig = Field(default_factory=ModelsConfig)


def layered(model: type[M], *layers: Mapping[str, Any] | None, source: str = "settings") -> M:
    """`model` built from its own defaults under `layers`, a later layer winning over an earlier one; nested
    mappings merge key by key, a None value is 'not given'. ConfigError names every bad key."""
    merged: dict[str, Any] = {}
    for layer in layers:
        _merge_into(merged, layer or {})
    return validated(model, merged, source)


def _merge_into(target: dict[str, Any], layer: Mapping[str, Any]) -> None:
    for key, value in layer.items():
        if isinstance(value, Mapping):
            _merge_into(target.setdefault(key, {}), value)
        elif value is not None:
            target[key] = value


def _describe(error: dict[str, Any]) -> str:
    key = ".".join(str(p) for p in error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"'{key}' is not a known setting; remove it or check its spelling (see `ilab config show`)"
    expected = error["msg"]
    return f"'{key}' has the wrong value {error.get('input')!r}: {expected}"


def validated(model: type[M], raw: Any, source: str, fix: str = "Fix the values named.") -> M:
    """`raw` validated into `model`; ConfigError listing every bad key otherwise."""
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        problems = "; ".join(_describe(e) for e in err.errors())
        raise ConfigError(f"{source}: invalid settings: {problems}. {fix}") from None


def parse_config(raw: Any, source: str = "config") -> Config:
    """Validate a mapping (already read from YAML) into a Config; ConfigError lists every bad key."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the file must hold a mapping of sections (chat:, generate:, ...).")
    return validated(Config, raw, source, "Fix the file or run `ilab config init`.")


def load_config(path: Path | None = None) -> Config:
    """Read config.yaml (LABRADOR_CONFIG / --config override); defaults when the file does not exist."""
    path = path or paths.config_file()
    if not path.exists():
        return Config()
    return parse_config(read_yaml(path, ConfigError), str(path))


def config_text(path: Path | None = None) -> str:
    """What `ilab config edit` opens: the file as written (read through `labrador.userfiles`), else the
    defaults in effect."""
    from labrador.userfiles import YAML_FILE, read_text

    path = path or paths.config_file()
    return read_text(path, YAML_FILE) if path.exists() else dump_config(load_config(path))


def parse_config_text(text: str, source: str) -> Config:
    """YAML text (an edited config) checked as `load_config` checks the file: the same YAML limits (alias
    bombs, nesting, keys written twice) and the same validation; ConfigError naming ``source`` otherwise."""
    from labrador.yamlnodes import load

    return parse_config(load(text, source, ConfigError), source)


def dump_config(config: Config) -> str:
    import yaml

    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def save_config(config: Config, path: Path | None = None) -> Path:
    from labrador.files import atomic_write_text

    path = path or paths.config_file()
    atomic_write_text(path, dump_config(config))
    return path
