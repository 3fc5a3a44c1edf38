"""Every training setting in one pydantic model, each default written here once: the CLI, config.yaml and a
preset fill it, the config.yaml of a run records it, resume reads it, and a pipeline stamp hashes it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from labrador.errors import LabradorError
from labrador.models.embedded import EMBEDDED_MODEL_NAME

# Where a run reads and writes and whether it continues: they never change what it computes.
RUN_LOCAL = frozenset({"data_path", "ckpt_output_dir", "resume"})


class TrainOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_path: str = Field(EMBEDDED_MODEL_NAME, description=(
        "Student: `smollm2-135m-instruct`, a GGUF file or a Hugging Face dir."))
    data_path: str = Field("", description="A messages JSONL file, or a datasets dir / generation run dir.")
    ckpt_output_dir: str = Field("", description="Run directory for checkpoints, metrics.jsonl, loss.png.")
    pipeline: Literal["simple", "full", "accelerated"] = Field("simple", description=(
        "simple = LoRA (laptop), full = full fine-tuning, accelerated = torchrun + FSDP/DDP."))
    strategy: Literal["single", "lab-multiphase"] = Field("single", description=(
        "lab-multiphase: phase 1 on knowledge data, then phase 2 on skills data from its best checkpoint."))
    num_epochs: int = Field(3, ge=1)
    learning_rate: float = 2e-5
    effective_batch_size: int = Field(16, ge=1, description="Samples per optimizer step (gradient accumulation).")
    max_seq_len: int = Field(2048, ge=1, description="Longer samples are dropped (and counted), never truncated.")
    max_batch_len: int = Field(8192, description="Tokens per packed micro-batch per process.")
    warmup_steps: int = 25
    lr_scheduler: Literal["cosine", "linear", "constant"] = "cosine"
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    lora_rank: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
                                           description="Comma-separated module names.")
    lora_quantize: Literal[4, 8] | None = Field(None, description="Quantize the base for LoRA (GPU only).")
    save_samples: int = Field(0, description="Also checkpoint every N samples (0: only at epoch ends).")
    resume: bool = Field(False, description="Continue the run in --ckpt-output-dir where it stopped.")
    seed: int = 42
    max_steps: int | None = Field(None, description="Stop after N optimizer steps (resumable with --resume).")
    held_out_fraction: float = Field(0.1, ge=0, lt=1, description="Share of the data held out to score checkpoints.")
    dtype: Literal["auto", "bf16", "fp32"] = Field(
        "auto", description="auto: bf16 autocast on GPUs that have it, else float32.")
    distributed_strategy: Literal["fsdp", "ddp"] = Field(
        "fsdp", description="How --pipeline accelerated spreads the model; the CPU always uses ddp.")
    nproc_per_node: int = Field(0, description="Processes per machine (0: all GPUs, 1 on CPU).")
    nnodes: int = 1
    node_rank: int = 0
    rdzv_endpoint: str = "127.0.0.1:29500"
    phase1_num_epochs: int = 7
    phase1_learning_rate: float = 2e-5
    phase1_effective_batch_size: int | None = None
    phase2_num_epochs: int = 10
    phase2_learning_rate: float = 6e-6
    phase2_effective_batch_size: int | None = None
    use_cache: bool = Field(True, description="Tokenize again instead of reusing the processed-data cache.")
    anchor_kl: bool = Field(True, description=(
        'Rows with "anchor": true train by KL to the starting model (off: cross-entropy on their text).'))
    anchor_weight: float = Field(1.0, gt=0, description=(
        "Weight of the anchor rows' KL against the other rows' cross-entropy, per token."))

    @property
    def lora(self) -> bool:
        return self.pipeline == "simple" and self.lora_rank > 0

    def validate(self) -> None:  # type: ignore[override]  # pydantic's deprecated classmethod of that name
        """The checks between fields (each field's own range and choices are pydantic's)."""
        problems = []
        if self.max_batch_len < self.max_seq_len:
            problems.append(f"--max-batch-len ({self.max_batch_len}) must be at least --max-seq-len "
                            f"({self.max_seq_len}) so that every kept sample fits in a packed batch")
        if self.lora_quantize and not self.lora:
            problems.append("--lora-quantize needs LoRA (--pipeline simple with --lora-rank > 0)")
        if self.pipeline == "simple" and self.lora_rank <= 0:
            problems.append("--pipeline simple trains LoRA adapters and needs --lora-rank > 0 "
                            "(use --pipeline full for full fine-tuning)")
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
