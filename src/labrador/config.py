"""config.yaml: pydantic-validated settings, one section per command family.

Every field has a default, so a missing file or section is fine; an unknown key or a wrong type is an error
that names the key's path and the expected type. CLI options override config values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from labrador import paths
from labrador.errors import ConfigError
from labrador.models.embedded import EMBEDDED_MODEL_NAME

DEFAULT_TAXONOMY_REPO = "https://github.com/instructlab/taxonomy.git"


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


class GenerateConfig(Section):
    pipeline: str = "simple"
    teacher: str = EMBEDDED_MODEL_NAME
    endpoint_urls: list[str] = Field(default_factory=list)
    taxonomy_path: str = Field(default_factory=lambda: str(paths.data_subdir("taxonomy")))
    taxonomy_base: str = "origin/main"
    output_dir: str = Field(default_factory=lambda: str(paths.data_subdir("datasets")))
    sdg_scale_factor: int = Field(default=30, ge=1)
    chunk_size: int = Field(default=500, ge=50)
    max_num_tokens: int = Field(default=4096, ge=64)
    num_workers: int = Field(default=8, ge=1)
    seed: int | None = None


class ServeConfig(Section):
    model: str = EMBEDDED_MODEL_NAME
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    backend: Literal["auto", "llama-cpp", "vllm", "transformers"] = "auto"
    max_ctx_size: int = Field(default=4096, ge=128)
    backend_args: list[str] = Field(default_factory=list)


class TrainConfig(Section):
    model: str = EMBEDDED_MODEL_NAME
    pipeline: Literal["simple", "full", "accelerated"] = "simple"
    data_path: str = Field(default_factory=lambda: str(paths.data_subdir("datasets")))
    ckpt_output_dir: str = Field(default_factory=lambda: str(paths.data_subdir("checkpoints")))
    num_epochs: int = Field(default=3, ge=1)
    learning_rate: float = Field(default=2e-5, gt=0)
    effective_batch_size: int = Field(default=16, ge=1)
    max_seq_len: int = Field(default=2048, ge=32)
    max_batch_len: int = Field(default=8192, ge=32)
    lora_rank: int = Field(default=8, ge=0)
    seed: int = 42


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


def _describe(error: dict[str, Any]) -> str:
    key = ".".join(str(p) for p in error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"'{key}' is not a known setting; remove it or check its spelling (see `ilab config show`)"
    expected = error["msg"]
    return f"'{key}' has the wrong value {error.get('input')!r}: {expected}"


def parse_config(raw: Any, source: str = "config") -> Config:
    """Validate a mapping (already read from YAML) into a Config; ConfigError lists every bad key."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the file must hold a mapping of sections (chat:, generate:, ...).")
    try:
        return Config.model_validate(raw)
    except ValidationError as err:
        problems = "; ".join(_describe(e) for e in err.errors())
        raise ConfigError(f"{source}: invalid configuration: {problems}. Fix the file or run `ilab config init`.") from None


def load_config(path: Path | None = None) -> Config:
    """Read config.yaml (LABRADOR_CONFIG / --config override); defaults when the file does not exist."""
    import yaml

    path = path or paths.config_file()
    if not path.exists():
        return Config()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: config.yaml is not valid YAML ({getattr(err, 'problem', err)}).") from None
    return parse_config(raw, str(path))


def dump_config(config: Config) -> str:
    import yaml

    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def save_config(config: Config, path: Path | None = None) -> Path:
    path = path or paths.config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(dump_config(config), encoding="utf-8")
    tmp.replace(path)
    return path
