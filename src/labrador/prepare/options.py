"""What `labrador.prepare.prepare` does to the generated data (each default written once, here)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict


class PrepareOptions(BaseModel):
    """The preparation switches; `ilab pipeline run` builds them from its settings, `ilab data prepare` from flags."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int | None = None  # the RAFT and replay choices of the phase mixes (labrador runs)
    raft_distractors: int = 3  # other chunks beside a phase-2 knowledge question (RAFT)
    raft_gold_ratio: float = 0.4  # share of RAFT samples that include the question's own chunk
    knowledge_replay_ratio: float = 1.0  # share of phase-1 knowledge rows replayed in phase 2
    grounded_only: bool = True  # drop knowledge rows whose answer names things its document does not
    closed_book: bool = True  # also train each grounded knowledge Q&A without its document (how users ask)
    train_on_seeds: bool = True  # add the knowledge leaves' own seed Q&A pairs to the training data
    self_replay: bool = True  # mix in the base student's own answers to general prompts (see prepare/replay.py)
    replay_prompts: Path | None = None  # None: the bundled labrador/data/replay/general_prompts.yaml
    replay_max_tokens: int = 64
    replay_kl: bool = True  # replay rows are anchors: KL to the phase's starting model, not their text (train/data.py)
    student: str | None = None  # the model that answers the replay prompts (needed when self_replay is on)
    threads: int | None = None  # in-process threads of the student answering the replay prompts; None: labrador.llm's rule
    heldout: Path | None = None  # held-out questions (YAML, `labrador.eval.questions`): no training row may hold one
    general_check: Path | None = None  # general-check questions (YAML): no replay prompt may hold one
