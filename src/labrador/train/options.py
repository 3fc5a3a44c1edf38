"""Every training setting in one pydantic model, each default written here once: the CLI, config.yaml and a
preset fill it, the config.yaml of a run records it, resume reads it, and a pipeline stamp hashes it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from labrador.errors import LabradorError
from labrador.models.embedded import EMBEDDED_MODEL_NAME

PIPELINES = ("simple", "full", "accelerated")
STRATEGIES = ("single", "lab-multiphase")
SCHEDULES = ("cosine", "linear", "constant")
DEFAULT_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")
# Where a run reads and writes and whether it continues: they never change what it computes.
RUN_LOCAL = frozenset({"data_path", "ckpt_output_dir", "resume"})


class TrainOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_path: str = EMBEDDED_MODEL_NAME
    data_path: str = ""
    ckpt_output_dir: str = ""
    pipeline: str = "simple"
    strategy: str = "single"
    num_epochs: int = 3
    learning_rate: float = 2e-5
    effective_batch_size: int = 16
    max_seq_len: int = 2048
    max_batch_len: int = 8192
    warmup_steps: int = 25
    lr_scheduler: str = "cosine"
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    lora_rank: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_target_modules: list[str] = Field(default_factory=lambda: list(DEFAULT_LORA_TARGETS))
    lora_quantize: int | None = None
    save_samples: int = 0  # 0: checkpoints only at epoch ends
    resume: bool = False
    seed: int = 42
    max_steps: int | None = None  # stop (and save a resumable state) after this many optimizer steps
    held_out_fraction: float = 0.1
    dtype: str = "auto"  # auto: bf16 autocast on GPUs that have it, else float32
    distributed_strategy: str = "fsdp"  # fsdp or ddp (accelerated pipeline); CPU always uses ddp
    nproc_per_node: int = 0  # 0: all local GPUs (1 on CPU)
    nnodes: int = 1
    node_rank: int = 0
    rdzv_endpoint: str = "127.0.0.1:29500"
    phase1_num_epochs: int = 7
    phase1_learning_rate: float = 2e-5
    phase1_effective_batch_size: int | None = None
    phase2_num_epochs: int = 10
    phase2_learning_rate: float = 6e-6
    phase2_effective_batch_size: int | None = None
    use_cache: bool = True
    anchor_kl: bool = True  # anchor rows ("anchor": true) train by KL to the phase's starting model
    anchor_weight: float = 1.0  # multiplies the anchor rows' KL (per token) against the other rows' cross-entropy

    @property
    def lora(self) -> bool:
        return self.pipeline == "simple" and self.lora_rank > 0

    def validate(self) -> None:  # type: ignore[override]  # pydantic's deprecated classmethod of that name
        problems = []
        if self.pipeline not in PIPELINES:
            problems.append(f"--pipeline must be one of {', '.join(PIPELINES)}")
        if self.strategy not in STRATEGIES:
            problems.append(f"--strategy must be one of {', '.join(STRATEGIES)}")
        if self.lr_scheduler not in SCHEDULES:
            problems.append(f"--lr-scheduler must be one of {', '.join(SCHEDULES)}")
        if self.max_batch_len < self.max_seq_len:
            problems.append(f"--max-batch-len ({self.max_batch_len}) must be at least --max-seq-len "
                            f"({self.max_seq_len}) so that every kept sample fits in a packed batch")
        if self.lora_quantize not in (None, 4, 8):
            problems.append("--lora-quantize must be 4 or 8")
        if self.lora_quantize and not self.lora:
            problems.append("--lora-quantize needs LoRA (--pipeline simple with --lora-rank > 0)")
        if self.pipeline == "simple" and self.lora_rank <= 0:
            problems.append("--pipeline simple trains LoRA adapters and needs --lora-rank > 0 "
                            "(use --pipeline full for full fine-tuning)")
        if not 0 <= self.held_out_fraction < 1:
            problems.append("--held-out-fraction must be in [0, 1)")
        for name in ("num_epochs", "effective_batch_size", "max_seq_len"):
            if getattr(self, name) < 1:
                problems.append(f"--{name.replace('_', '-')} must be positive")
        if problems:
            raise LabradorError("Invalid training options: " + "; ".join(problems) + ".")

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()

    def result_settings(self) -> dict[str, Any]:
        """Every field that can change what training computes (all but the `RUN_LOCAL` ones): what a
        pipeline stamp hashes, so that no such setting can be left out of it."""
        return self.model_dump(exclude=set(RUN_LOCAL))

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrainOptions:
        """Options recorded by an older or newer labrador: keys this version does not know are ignored."""
        return cls(**{k: v for k, v in raw.items() if k in cls.model_fields})
