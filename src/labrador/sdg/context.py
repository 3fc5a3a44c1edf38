"""What a block sees while it runs: the teacher, options, the leaf it works for, and counters for the summary."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:  # the options alone (`ilab data generate --help`) need no teacher
    from labrador.sdg.teacher import Teacher


@dataclass
class BlockStats:
    leaf: str
    pipeline: str
    block: str
    kind: str
    rows_in: int = 0
    rows_out: int = 0
    requests: int = 0  # teacher samples asked for (cached or not)
    cached: int = 0
    parse_failures: int = 0
    truncated: int = 0  # answers cut by max_tokens (their last, incomplete item is dropped)
    errors: int = 0
    filtered: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    warning: str = ""


class GenerateOptions(BaseModel):
    """The generation settings, each default written here once (the CLI, config.yaml and a preset fill it)."""

    model_config = ConfigDict(extra="forbid")

    scale_factor: int = Field(30, ge=1, description="Teacher samples per seed example.")
    max_num_tokens: int = Field(4096, ge=16, description=(
        "Most tokens the teacher may write per answer; longer generated answers are dropped."))
    chunk_size: int = Field(500, ge=50, description="Document chunk size in tokens.")
    chunk_overlap: int = Field(50, ge=0, description="Tokens of overlap between consecutive chunks.")
    num_workers: int = Field(8, ge=1, description="Teacher requests in flight at once.")
    seed: int | None = Field(None, description="Makes a run reproducible with a deterministic teacher.")
    num_examples: int = Field(2, ge=0, description="Seed examples sampled into each generation prompt.")
    max_prompt_tokens: int = 1536  # leave room in the teacher's context window for the answer
    timeout: float = Field(120.0, ge=0.1, description="Seconds to wait for one teacher answer.")
    dedup_threshold: float = 0.8
    decontam_ngram: int = 5
    decontam_threshold: float = 0.5
    max_answer_tokens: int | None = None  # defaults to max_num_tokens


def fit_to_context(options: GenerateOptions, context_length: int | None) -> GenerateOptions:
    """The options shrunk to fit a teacher whose context window is `context_length` tokens (unknown: as given).

    The answer keeps at least a quarter of the window, the prompt gets the rest (at most `max_prompt_tokens`),
    and a document chunk at most half of the prompt, so that instructions and seed examples fit beside it.
    With the defaults and a 2,048-token or larger window nothing changes.
    """
    if not context_length:
        return options
    answer = min(options.max_num_tokens, context_length // 4)
    prompt = min(options.max_prompt_tokens, context_length - answer)
    chunk = min(options.chunk_size, prompt // 2)
    return options.model_copy(update={"max_prompt_tokens": prompt, "chunk_size": chunk,
                                      "chunk_overlap": min(options.chunk_overlap, chunk // 4)})


ProgressHook = Callable[..., None]  # (stats, done, total, final=False)


@dataclass
class LeafContext:
    leaf: str  # leaf rel path, e.g. knowledge/science/planets
    pipeline: str  # pipeline name, e.g. simple/knowledge
    teacher: Teacher
    options: GenerateOptions
    stats: list[BlockStats] = field(default_factory=list)
    on_progress: ProgressHook | None = None
    successes: int = 0
    failures: int = 0
    started: float = field(default_factory=time.perf_counter)

    def new_stats(self, block: str, kind: str, rows_in: int) -> BlockStats:
        stats = BlockStats(self.leaf, self.pipeline, block, kind, rows_in=rows_in)
        self.stats.append(stats)
        return stats

    def progress(self, stats: BlockStats, done: int, total: int, final: bool = False) -> None:
        if self.on_progress is not None:
            self.on_progress(stats, done, total, final)

    def seed_for(self, *parts: int) -> int | None:
        """A per-sample seed derived from --seed (None keeps the backend's own randomness)."""
        if self.options.seed is None:
            return None
        value = self.options.seed
        for part in parts:
            value = (value * 1_000_003 + part) % (2**31 - 1)
        return value
