"""What `labrador.prepare.prepare` does to the generated data (each default written once, here)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class PrepareOptions(BaseModel):
    """The preparation switches; `ilab pipeline run` builds them from its settings, `ilab data prepare` from flags."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int | None = Field(None, description="Seed of the RAFT and replay choices of the phase mixes.")
    raft_distractors: int = Field(3, ge=0, description="Other chunks shown beside a phase-2 knowledge question (RAFT).")
    raft_gold_ratio: float = Field(0.4, ge=0, le=1, description=(
        "Share of RAFT samples that include the question's own chunk."))
    knowledge_replay_ratio: float = 1.0  # share of phase-1 knowledge rows replayed in phase 2
    grounded_only: bool = Field(True, description=(
        "Drop knowledge rows whose answer names things or claims its document does not."))
    closed_book: bool = Field(True, description="Also train each grounded knowledge Q&A without its document.")
    train_on_seeds: bool = Field(True, description="Add the knowledge leaves' seed Q&A pairs (needs --taxonomy-path).")
    self_replay: bool = Field(True, description="Add the student's own answers to general prompts (runs the student).")
    replay_prompts: Path | None = Field(None, description=(
        "YAML with a 'prompts:' list (default: the bundled general prompts)."))
    replay_max_tokens: int = Field(64, ge=1, description="Most tokens per replay answer.")
    replay_kl: bool = Field(True, description=(
        "Train replay rows by KL to the starting model (anchors) instead of by their text."))
    student: str | None = None  # the model that answers the replay prompts (needed when self_replay is on)
    threads: int | None = Field(None, ge=1, description="CPU threads of an in-process student.")  # None: llm's rule
    heldout: Path | None = Field(None, description="Held-out questions (YAML): no training row may contain one.")
    general_check: Path | None = Field(None, description=(
        "General-check questions (YAML): no replay prompt may contain one."))
