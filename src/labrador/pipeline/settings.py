"""The settings of one `ilab pipeline run`: the options of each stage, as the models their libraries take.

Every default lives in the model of the library that uses it (GenerateOptions, PrepareOptions, TrainOptions);
the values a setup was tuned with come from a preset (`labrador/presets/cpu-laptop.yaml` for the demo).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from labrador.models.embedded import EMBEDDED_MODEL_NAME
from labrador.prepare.options import PrepareOptions
from labrador.sdg.context import GenerateOptions
from labrador.train.options import TrainOptions

PHASES = ("knowledge", "skills")


class PhaseOptions(BaseModel):
    """What one training phase of the pipeline changes in the shared `train` options (None: train's value)."""

    model_config = ConfigDict(extra="forbid")

    num_epochs: int | None = None
    learning_rate: float | None = None


class PipelineSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    taxonomy_path: Path
    run_dir: Path
    taxonomy_base: str = "origin/main"
    student: str = EMBEDDED_MODEL_NAME
    teacher: str = EMBEDDED_MODEL_NAME
    judge: str | None = None  # None: the teacher judges
    heldout: Path | None = None  # YAML: questions with key_facts about the changed knowledge leaves
    general_check: Path | None = None  # YAML: general questions whose score must not drop
    sdg_pipeline: str = "simple"
    generate: GenerateOptions = Field(default_factory=GenerateOptions)
    prepare: PrepareOptions = Field(default_factory=PrepareOptions)
    # both training phases (knowledge, then skills from the knowledge checkpoint); each phase sets the model,
    # the data and the checkpoint dir, and may change the epochs and learning rate
    train: TrainOptions = Field(default_factory=TrainOptions)
    knowledge: PhaseOptions = Field(default_factory=PhaseOptions)
    skills: PhaseOptions = Field(default_factory=PhaseOptions)
    gguf_outtype: str = "f16"
    eval_max_tokens: int = 64
    threads: int | None = None  # in-process model threads; None: labrador.llm's rule
    # run control
    force: list[str] = Field(default_factory=list)  # stage names to redo; "all" redoes everything
    skip_judge: bool = False

    @classmethod
    def from_preset(cls, preset: str | None, *layers: Mapping[str, Any] | None) -> PipelineSettings:
        """The settings of `preset` (a bundled name, a YAML file or 'none') under `layers`, later ones winning
        (see `labrador.config.layered`)."""
        from labrador.config import layered
        from labrador.presets import load_preset

        return layered(cls, load_preset(preset), *layers, source=f"pipeline settings (preset {preset})")

    def train_options(self, phase: str, model_path: str, data_path: str) -> TrainOptions:
        """The options of one training phase, without its checkpoint dir (the runner names that by their hash)."""
        changes = getattr(self, phase).model_dump(exclude_none=True)
        return TrainOptions.model_validate({**self.train.model_dump(), "model_path": model_path,
                                            "data_path": data_path, "ckpt_output_dir": "", "resume": False,
                                            "strategy": "single", **changes})

    def prepare_options(self) -> PrepareOptions:
        """The preparation switches (`prepare`) with this run's student, threads and question sets."""
        return PrepareOptions.model_validate({
            **self.prepare.model_dump(), "student": self.student, "heldout": self.heldout,
            "general_check": self.general_check, **({"threads": self.threads} if self.threads else {})})

    def generation_inputs(self) -> dict[str, Any]:
        return {"teacher": self.teacher, "pipeline": self.sdg_pipeline, "options": self.generate}

    def data_inputs(self) -> dict[str, Any]:
        from labrador.prepare.replay import bundled_prompts

        # the prompt file counts by content, the bundled one too: new bundled prompts redo the data
        options = self.prepare_options()
        return {"options": options, "prompts": options.replay_prompts or bundled_prompts()}

    def eval_inputs(self) -> dict[str, Any]:
        return {"heldout": self.heldout, "general": self.general_check, "max_tokens": self.eval_max_tokens,
                "judge": None if self.skip_judge else (self.judge or self.teacher)}
