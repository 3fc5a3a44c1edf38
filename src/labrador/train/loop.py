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
    import torch

    data = spec.data
    lengths = data.lengths()
    loss_tokens = data.loss_tokens()
    steps_per_epoch = math.ceil(len(data) / spec.effective_batch_size)
    total_steps = steps_per_epoch * spec.num_epochs
    optimizer = make_optimizer(model, opts, spec.learning_rate)
    scheduler = make_scheduler(optimizer, opts, total_steps)
    state_dir = spec.out_dir / "full_state"
    result = PhaseResult()
    epoch = step_in_epoch = samples_seen = 0
    if resume and checkpoint.load_progress(state_dir) is not None:
        progress = checkpoint.load_full_state(state_dir, model, optimizer, scheduler, env.rank, env.world_size)
        epoch, step_in_epoch = progress["epoch"], progress["step_in_epoch"]
        samples_seen, result.global_step = progress["samples_seen"], progress["global_step"]
        result.checkpoints, result.best = progress["checkpoints"], progress["best"]
        metrics.drop_after(spec.name, result.global_step)
    parameters = [p for p in model.parameters() if p.requires_grad]
    bar = Progress(total_steps, spec.name, env.is_main, completed=result.global_step)
    steps_this_run = 0

    def save(reason: str) -> None:
        progress = {"epoch": epoch, "step_in_epoch": step_in_epoch, "samples_seen": samples_seen,
                    "global_step": result.global_step, "checkpoints": result.checkpoints, "best": result.best,
                    "reason": reason}
        checkpoint.save_full_state(state_dir, model, optimizer, scheduler, progress, env.rank, env.world_size)

    def save_hf_and_score() -> None:
        target = spec.out_dir / "hf_format" / f"samples_{samples_seen}"
        checkpoint.save_hf(model, tokenizer, target, env.is_main)
        record: dict[str, Any] = {"path": str(target), "step": result.global_step, "samples": samples_seen,
                                  "epoch": epoch}
        if spec.held_out is not None:
            record["held_out_loss"] = held_out_loss(model, spec.held_out, opts, env)
            metrics.write({"phase": spec.name, "step": result.global_step, "held_out_loss":
                           record["held_out_loss"], "checkpoint": str(target)})
        result.checkpoints.append(record)
        result.best = _best(result.checkpoints)
        _prune(result.checkpoints, result.best, env.is_main)

    if spec.held_out is not None and result.global_step == 0 and not result.checkpoints:
        result.initial_held_out_loss = held_out_loss(model, spec.held_out, opts, env)
        metrics.write({"phase": spec.name, "step": 0, "held_out_loss": result.initial_held_out_loss})
    model.train()
    try:
        while epoch < spec.num_epochs:
            batches = batching.global_batches(batching.epoch_order(len(data), opts.seed, epoch),
                                              spec.effective_batch_size)
            while step_in_epoch < len(batches):
                if step_budget is not None and steps_this_run >= step_budget:
                    save("max-steps")
                    return result
                started = time.perf_counter()
                batch = batches[step_in_epoch]
                step_loss = _optimizer_step(model, data, batch, lengths, loss_tokens, opts, env, parameters,
                                            spec.reference)
                grad_norm = torch.nn.utils.clip_grad_norm_(parameters, opts.max_grad_norm) \
                    if not hasattr(model, "clip_grad_norm_") else model.clip_grad_norm_(opts.max_grad_norm)
                lr = scheduler.get_last_lr()[0]
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                elapsed = time.perf_counter() - started
                previous_samples = samples_seen
                samples_seen += len(batch)
                step_in_epoch += 1
                result.global_step += 1
                steps_this_run += 1
                tokens = int(sum(int(lengths[i]) for i in batch))
                metrics.write({"phase": spec.name, "step": result.global_step, "epoch": epoch,
                               "samples": samples_seen, "loss": step_loss, "lr": lr,
                               "grad_norm": float(grad_norm), "tokens": tokens,
                               "tokens_per_s": tokens / elapsed, "samples_per_s": len(batch) / elapsed,
                               "memory_mb": memory_mb(env.device)})
                bar.update(result.global_step, step_loss, tokens / elapsed)
                epoch_done = step_in_epoch == len(batches)
                crossed = opts.save_samples > 0 and \
                    samples_seen // opts.save_samples > previous_samples // opts.save_samples
                if epoch_done:
                    epoch, step_in_epoch = epoch + 1, 0
                if crossed or epoch_done:
                    save_hf_and_score()
                    save("checkpoint")
                if epoch_done:
                    break
        result.finished = True
        return result
    finally:
        bar.close()


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

