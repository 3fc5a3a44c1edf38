"""The settings of one `ilab pipeline run`, with defaults sized for a CPU laptop and the embedded SmolLM2."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from labrador.models.embedded import EMBEDDED_MODEL_NAME


@dataclass
class PipelineSettings:
    taxonomy_path: Path
    run_dir: Path
    taxonomy_base: str = "origin/main"
    student: str = EMBEDDED_MODEL_NAME
    teacher: str = EMBEDDED_MODEL_NAME
    judge: str | None = None  # None: the teacher judges
    heldout: Path | None = None  # YAML: questions with key_facts about the changed knowledge leaves
    general_check: Path | None = None  # YAML: general questions whose score must not drop
    # generation (scale 2: ~55 teacher calls for the sample, ~5 min on two busy cores)
    sdg_pipeline: str = "simple"
    scale_factor: int = 2
    chunk_size: int = 300
    max_num_tokens: int = 192
    num_workers: int = 2
    seed: int = 42
    grounded_only: bool = True  # drop knowledge rows whose answer names things its document does not
    closed_book: bool = True  # also train each grounded knowledge Q&A without its document (how users ask)
    train_on_seeds: bool = True  # add the knowledge leaves' own seed Q&A pairs to the training data
    self_replay: bool = True  # mix in the base student's own answers to general prompts (see pipeline/replay.py)
    replay_prompts: Path | None = None  # None: the bundled labrador/data/replay/general_prompts.yaml
    replay_max_tokens: int = 64
    replay_kl: bool = True  # replay rows are anchors: KL to the phase's starting model, not their text (train/data.py)
    anchor_weight: float = 1.0  # the anchors' KL against the other rows' cross-entropy, per token
    # training (knowledge phase, then skills phase from the knowledge checkpoint). LoRA on every linear layer
    # (facts live in the MLPs as much as in attention), a high learning rate and small batches: few samples
    # and few epochs is all two CPU cores allow in the demo's time.
    train_pipeline: str = "simple"  # simple = LoRA, full = every weight
    knowledge_epochs: int = 3
    knowledge_lr: float = 1e-3
    skills_epochs: int = 1
    skills_lr: float = 1e-4
    effective_batch_size: int = 2  # measured: general check 23/24 where 4 gave 22/24 (docs/demo.md)
    max_seq_len: int = 448
    lora_rank: int = 16
    lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    # conversion: f16 keeps the small weight changes of a LoRA tune (a 4-bit requantization can erase them)
    gguf_outtype: str = "f16"
    # evaluation
    eval_max_tokens: int = 64
    threads: int = 2  # llama.cpp threads (on an oversubscribed CPU, 1 is much faster than 2)
    # run control
    force: list[str] = field(default_factory=list)  # stage names to redo; "all" redoes everything
    skip_judge: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}

    def generation_inputs(self) -> dict[str, Any]:
        return {"teacher": self.teacher, "pipeline": self.sdg_pipeline, "scale_factor": self.scale_factor,
                "chunk_size": self.chunk_size, "max_num_tokens": self.max_num_tokens, "seed": self.seed}

    def data_inputs(self) -> dict[str, Any]:
        from labrador.pipeline.replay import bundled_prompts

        # the prompt file counts by content, the bundled one too: new bundled prompts redo the data
        prompts = self.replay_prompts or bundled_prompts()
        replay = {"student": self.student, "prompts": prompts, "general": self.general_check,
                  "max_tokens": self.replay_max_tokens, "kl": self.replay_kl} if self.self_replay else None
        return {"heldout": self.heldout, "closed_book": self.closed_book, "seeds": self.train_on_seeds,
                "grounded_only": self.grounded_only, "replay": replay}

    def training_inputs(self, phase: str) -> dict[str, Any]:
        epochs, lr = ((self.knowledge_epochs, self.knowledge_lr) if phase == "knowledge"
                      else (self.skills_epochs, self.skills_lr))
        return {"pipeline": self.train_pipeline, "epochs": epochs, "lr": lr, "batch": self.effective_batch_size,
                "max_seq_len": self.max_seq_len, "lora_rank": self.lora_rank, "lora_targets": list(self.lora_targets),
                "seed": self.seed, **({"anchor_weight": self.anchor_weight} if self.anchor_weight != 1.0 else {})}

    def eval_inputs(self) -> dict[str, Any]:
        return {"heldout": self.heldout, "general": self.general_check, "max_tokens": self.eval_max_tokens,
                "judge": None if self.skip_judge else (self.judge or self.teacher)}
