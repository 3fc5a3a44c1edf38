"""The training loop of one phase: exact per-token loss over a global batch, accumulation, schedule, checkpoints.

Loss = summed token cross-entropy / loss tokens of the whole global batch. Every rank knows the whole batch
(the sample order is a function of seed and epoch), so the denominator needs no communication; each rank
scales its summed loss by world_size / tokens because DDP/FSDP average gradients over ranks.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labrador.train import batching, checkpoint
from labrador.train.data import ProcessedData
from labrador.train.distributed import DistEnv, all_reduce_sum
from labrador.train.metrics import MetricsLog, Progress, memory_mb
from labrador.train.options import TrainOptions


@dataclass
class PhaseSpec:
    name: str
    data: ProcessedData
    held_out: ProcessedData | None
    num_epochs: int
    learning_rate: float
    effective_batch_size: int
    out_dir: Path
    reference: Any = None  # callable MicroBatch -> the starting model's logits, for anchor samples (or None)


@dataclass
class PhaseResult:
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] | None = None
    finished: bool = False
    global_step: int = 0
    initial_held_out_loss: float | None = None


def make_optimizer(model: Any, opts: TrainOptions, lr: float) -> Any:
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    try:  # the fused kernel is several times faster than the per-tensor loop, on CPU as on GPU
        return torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.95), weight_decay=opts.weight_decay, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.95), weight_decay=opts.weight_decay)


def lr_factor(step: int, warmup: int, total: int, kind: str) -> float:
    """Linear warmup to the peak, then cosine or linear decay to 0 (or constant) at the last step."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    if kind == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1 + math.cos(math.pi * progress)) if kind == "cosine" else 1.0 - progress


def make_scheduler(optimizer: Any, opts: TrainOptions, total_steps: int) -> Any:
    import torch

    # A warmup longer than a tenth of the run would keep short runs from ever reaching their learning rate.
    warmup = min(opts.warmup_steps, total_steps // 10)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, warmup, total_steps, opts.lr_scheduler))


def _autocast(env: DistEnv) -> Any:
    import torch

    if env.autocast_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=env.device.type, dtype=env.autocast_dtype)


def held_out_loss(model: Any, data: ProcessedData, opts: TrainOptions, env: DistEnv) -> float:
    """Per-token loss on held-out samples (split over ranks), in eval mode."""
    import torch

    lengths = data.lengths()
    mine = batching.split_for_rank(list(range(len(data))), lengths, env.world_size, env.rank)
    total = 0.0
    model.eval()
    with torch.no_grad(), _autocast(env):
        for group in batching.pack(mine, lengths, opts.max_batch_len):
            total += float(batching.summed_loss(model, batching.collate(data, group, env.device)))
    model.train()
    return all_reduce_sum(total, env) / float(data.loss_tokens().sum())


def train_phase(model: Any, tokenizer: Any, spec: PhaseSpec, opts: TrainOptions, env: DistEnv,
                metrics: MetricsLog, resume: bool, step_budget: int | None) -> PhaseResult:
    """Train one phase; returns its checkpoints and the best one. Stops early after `step_budget` steps."""
    phase = _PhaseRun(model, tokenizer, spec, opts, env, metrics, resume)
    steps_this_run = 0
    try:
        while phase.epoch < spec.num_epochs:
            batches = batching.global_batches(batching.epoch_order(len(spec.data), opts.seed, phase.epoch),
                                              spec.effective_batch_size)
            for batch in batches[phase.step_in_epoch:]:  # a resumed epoch continues where it stopped
                if step_budget is not None and steps_this_run >= step_budget:
                    phase.save("max-steps")
                    return phase.result
                crossed = phase.step(batch)
                steps_this_run += 1
                epoch_done = phase.step_in_epoch == len(batches)
                if epoch_done:
                    phase.epoch, phase.step_in_epoch = phase.epoch + 1, 0
                if crossed or epoch_done:
                    phase.save_hf_and_score()
                    phase.save("checkpoint")
                    # only now: the saved state no longer names the checkpoints pruned here as best
                    _prune(phase.result.checkpoints, phase.result.best, env.is_main)
        phase.result.finished = True
        return phase.result
    finally:
        phase.bar.close()


class _PhaseRun:
    """One phase's training state: optimizer, schedule, counters; built fresh or resumed from full_state/."""

    def __init__(self, model: Any, tokenizer: Any, spec: PhaseSpec, opts: TrainOptions, env: DistEnv,
                 metrics: MetricsLog, resume: bool) -> None:
        self.model, self.tokenizer, self.spec, self.opts, self.env, self.metrics = (
            model, tokenizer, spec, opts, env, metrics)
        self.lengths = spec.data.lengths()
        self.loss_tokens = spec.data.loss_tokens()
        total_steps = math.ceil(len(spec.data) / spec.effective_batch_size) * spec.num_epochs
        self.optimizer = make_optimizer(model, opts, spec.learning_rate)
        self.scheduler = make_scheduler(self.optimizer, opts, total_steps)
        self.state_dir = spec.out_dir / "full_state"
        self.result = PhaseResult()
        self.epoch = self.step_in_epoch = self.samples_seen = 0
        if resume and checkpoint.load_progress(self.state_dir) is not None:
            self._resume()
        self.parameters = [p for p in model.parameters() if p.requires_grad]
        self.bar = Progress(total_steps, spec.name, env.is_main, completed=self.result.global_step)
        if spec.held_out is not None and self.result.global_step == 0 and not self.result.checkpoints:
            self.result.initial_held_out_loss = held_out_loss(model, spec.held_out, opts, env)
            metrics.write({"phase": spec.name, "step": 0, "held_out_loss": self.result.initial_held_out_loss})
        model.train()

    def _resume(self) -> None:
        progress = checkpoint.load_full_state(self.state_dir, self.model, self.optimizer, self.scheduler,
                                              self.env.rank, self.env.world_size)
        self.epoch, self.step_in_epoch = progress["epoch"], progress["step_in_epoch"]
        self.samples_seen, self.result.global_step = progress["samples_seen"], progress["global_step"]
        self.result.checkpoints, self.result.best = progress["checkpoints"], progress["best"]
        self.metrics.drop_after(self.spec.name, self.result.global_step)

    def step(self, batch: list[int]) -> bool:
        """One optimizer step over a global batch, logged; True when it crossed a `save_samples` boundary."""
        import torch

        model, opts = self.model, self.opts
        started = time.perf_counter()
        step_loss = _optimizer_step(model, self.spec.data, batch, self.lengths, self.loss_tokens, opts, self.env,
                                    self.parameters, self.spec.reference)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.parameters, opts.max_grad_norm) \
            if not hasattr(model, "clip_grad_norm_") else model.clip_grad_norm_(opts.max_grad_norm)
        lr = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        elapsed = time.perf_counter() - started
        previous_samples = self.samples_seen
        self.samples_seen += len(batch)
        self.step_in_epoch += 1
        self.result.global_step += 1
        tokens = int(sum(int(self.lengths[i]) for i in batch))
        self.metrics.write({"phase": self.spec.name, "step": self.result.global_step, "epoch": self.epoch,
                            "samples": self.samples_seen, "loss": step_loss, "lr": lr,
                            "grad_norm": float(grad_norm), "tokens": tokens,
                            "tokens_per_s": tokens / elapsed, "samples_per_s": len(batch) / elapsed,
                            "memory_mb": memory_mb(self.env.device)})
        self.bar.update(self.result.global_step, step_loss, tokens / elapsed)
        every = opts.save_samples
        return every > 0 and self.samples_seen // every > previous_samples // every

    def save(self, reason: str) -> None:
        """The resume state (model, optimizer, schedule, counters) under full_state/."""
        progress = {"epoch": self.epoch, "step_in_epoch": self.step_in_epoch, "samples_seen": self.samples_seen,
                    "global_step": self.result.global_step, "checkpoints": self.result.checkpoints,
                    "best": self.result.best, "reason": reason}
        checkpoint.save_full_state(self.state_dir, self.model, self.optimizer, self.scheduler, progress,
                                   self.env.rank, self.env.world_size)

    def save_hf_and_score(self) -> None:
        """A standalone HF checkpoint, scored on the held-out set (`_prune` then keeps the best and newest)."""
        spec, result = self.spec, self.result
        target = spec.out_dir / "hf_format" / f"samples_{self.samples_seen}"
        checkpoint.save_hf(self.model, self.tokenizer, target, self.env.is_main)
        record: dict[str, Any] = {"path": str(target), "step": result.global_step, "samples": self.samples_seen,
                                  "epoch": self.epoch}
        if spec.held_out is not None:
            record["held_out_loss"] = held_out_loss(self.model, spec.held_out, self.opts, self.env)
            self.metrics.write({"phase": spec.name, "step": result.global_step, "held_out_loss":
                                record["held_out_loss"], "checkpoint": str(target)})
        result.checkpoints.append(record)
        result.best = _best(result.checkpoints)


def _optimizer_step(model: Any, data: ProcessedData, batch: list[int], lengths: Any, loss_tokens: Any,
                    opts: TrainOptions, env: DistEnv, parameters: list[Any], reference: Any = None) -> float:
    """Forward/backward every micro-batch of this rank's share; returns the global per-token loss."""
    total_tokens = float(sum(int(loss_tokens[i]) for i in batch))
    mine = batching.split_for_rank(batch, lengths, env.world_size, env.rank)
    scale = env.world_size / total_tokens
    if not mine:  # fewer samples than ranks: join the gradient all-reduce with a zero contribution
        mine, scale = batch[:1], 0.0
    groups = batching.pack(mine, lengths, opts.max_batch_len)
    local = 0.0
    for j, group in enumerate(groups):
        last = j == len(groups) - 1
        sync = contextlib.nullcontext() if last or not env.distributed else model.no_sync()
        with sync:
            with _autocast(env):
                micro = batching.collate(data, group, env.device)
                loss = batching.summed_loss(model, micro, reference, opts.anchor_weight)
            (loss * scale).backward()
        local += float(loss.detach()) if scale else 0.0
    return all_reduce_sum(local, env) / total_tokens


def _best(checkpoints: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not checkpoints:
        return None
    scored = [c for c in checkpoints if "held_out_loss" in c]
    return min(scored, key=lambda c: c["held_out_loss"]) if scored else checkpoints[-1]


def _prune(checkpoints: list[dict[str, Any]], best: dict[str, Any] | None, is_main: bool) -> None:
    """Keep the best and the newest HF checkpoint on disk; older ones only cost disk space."""
    import shutil

    keep = {checkpoints[-1]["path"], best["path"] if best else ""}
    for record in checkpoints:
        if record["path"] not in keep and not record.get("removed"):
            record["removed"] = True
            if is_main:
                shutil.rmtree(record["path"], ignore_errors=True)

