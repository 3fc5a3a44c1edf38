"""Checkpoints: standalone Hugging Face directories for use, and a full training state for --resume.

- `hf_format/samples_<N>/`: safetensors + config + tokenizer; LoRA adapters merged into the base weights so the
  directory loads with plain `AutoModelForCausalLM.from_pretrained` (and converts to GGUF).
- `full_state/`: trainable weights, optimizer, scheduler, progress (epoch, step, samples seen, best score) and
  every RNG state; only the newest is kept. Written to a temporary name and renamed, so a kill mid-write
  leaves the previous state intact.

`kill_point` is a test-only fault injection (tests/test_train_resume.py): it SIGKILLs the process at a
named point of a checkpoint write, and only when both LABRADOR_TEST_SIGKILL_AT and pytest's
PYTEST_CURRENT_TEST are set, so it cannot fire in normal use.
"""

from __future__ import annotations

import copy
import json
import os
import random
import shutil
import signal
from pathlib import Path
from typing import Any

import numpy as np

from labrador.errors import LabradorError
from labrador.files import move_into_place

_KILL_ENV = "LABRADOR_TEST_SIGKILL_AT"  # "<point>:<n>": die the n-th time this process reaches <point>
_points_reached: dict[str, int] = {}


def kill_point(point: str) -> None:
    """Test-only: SIGKILL this process here when LABRADOR_TEST_SIGKILL_AT names this point and this pass
    (under pytest only). A kill at an exact place inside a write cannot be timed from outside the process."""
    wanted = os.environ.get(_KILL_ENV)
    if not wanted or "PYTEST_CURRENT_TEST" not in os.environ or wanted.partition(":")[0] != point:
        return
    _points_reached[point] = _points_reached.get(point, 0) + 1
    if str(_points_reached[point]) == wanted.partition(":")[2]:
        os.kill(os.getpid(), signal.SIGKILL)


def unwrap(model: Any) -> Any:
    return model.module if hasattr(model, "module") else model


def is_fsdp(model: Any) -> bool:
    return type(model).__name__ == "FullyShardedDataParallel"


def full_model_state(model: Any) -> dict[str, Any] | None:
    """The whole (unsharded) state dict; under FSDP gathered on rank 0 (None elsewhere)."""
    if is_fsdp(model):
        import torch.distributed as dist
        from torch.distributed.fsdp import FullStateDictConfig, StateDictType
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

        config = FullStateDictConfig(offload_to_cpu=True, rank0_only=True)
        with FSDP.state_dict_type(model, StateDictType.FULL_STATE_DICT, config):
            state = model.state_dict()
        return state if dist.get_rank() == 0 else None
    return unwrap(model).state_dict()


def save_hf(model: Any, tokenizer: Any, target: Path, is_main: bool) -> Path | None:
    """A standalone HF checkpoint (LoRA merged). Every rank must call it (FSDP gathers); rank 0 writes."""
    state = full_model_state(model)
    if not is_main:
        return None
    inner = unwrap(model)
    if not hasattr(inner, "merge_and_unload"):
        return write_hf_dir(target, inner, tokenizer, state_dict=state, safe_serialization=True)
    merged = copy.deepcopy(inner)  # peft: merge a copy, keep training the adapters
    if is_fsdp(model):
        merged.load_state_dict(state)
    return write_hf_dir(target, merged.merge_and_unload(), tokenizer, safe_serialization=True)


def write_hf_dir(target: Path, model: Any, tokenizer: Any, **save: Any) -> Path:
    """`model.save_pretrained(..., **save)` and the tokenizer, written beside `target`, then moved into place."""
    tmp = target.with_name(target.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp, **save)
    kill_point("hf-weights-written")
    tokenizer.save_pretrained(tmp)
    move_into_place(tmp, target)
    return target


def rng_state() -> dict[str, Any]:
    import torch

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _trainable_state(model: Any) -> dict[str, Any]:
    inner = unwrap(model)
    names = {n for n, p in inner.named_parameters() if p.requires_grad}
    return {k: v.detach().cpu().clone() for k, v in inner.state_dict().items() if k in names}


def save_full_state(target: Path, model: Any, optimizer: Any, scheduler: Any, progress: dict[str, Any],
                    rank: int, world_size: int) -> None:
    """Resume state; under FSDP each rank writes its own shard files, otherwise rank 0 writes everything."""
    import torch
    import torch.distributed as dist

    tmp = target.with_name(target.name + ".tmp")
    fsdp = is_fsdp(model)
    if rank == 0:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
    if world_size > 1:
        dist.barrier()
    if fsdp:
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
        from torch.distributed.fsdp import StateDictType

        with FSDP.state_dict_type(model, StateDictType.LOCAL_STATE_DICT):
            torch.save(model.state_dict(), tmp / f"model_rank{rank}.pt")
        torch.save(optimizer.state_dict(), tmp / f"optimizer_rank{rank}.pt")
        torch.save(rng_state(), tmp / f"rng_rank{rank}.pt")
    elif rank == 0:
        torch.save(_trainable_state(model), tmp / "model.pt")
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    if rank == 0:
        kill_point("state-half-written")
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        if not fsdp:
            torch.save(rng_state(), tmp / "rng.pt")
        (tmp / "progress.json").write_text(json.dumps({**progress, "world_size": world_size}, indent=1))
    if world_size > 1:
        dist.barrier()
    if rank == 0:
        # previous -> .old, new -> target, drop .old: a kill at any point leaves one complete state behind.
        # Without a target (a kill between the two renames), .old is that state: it stays until target exists.
        old = target.with_name(target.name + ".old")
        if target.exists():
            if old.exists():
                shutil.rmtree(old)
            target.rename(old)
        kill_point("state-swapping")  # the newest complete state is only full_state.old now
        tmp.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    if world_size > 1:
        dist.barrier()


def _state_dir(target: Path) -> Path:
    old = target.with_name(target.name + ".old")
    return target if (target / "progress.json").is_file() or not (old / "progress.json").is_file() else old


def load_progress(target: Path) -> dict[str, Any] | None:
    path = _state_dir(target) / "progress.json"
    return json.loads(path.read_text()) if path.is_file() else None


def load_full_state(target: Path, model: Any, optimizer: Any, scheduler: Any, rank: int,
                    world_size: int) -> dict[str, Any]:
    import torch

    target = _state_dir(target)
    progress = load_progress(target)
    if progress is None:
        raise LabradorError(f"{target} holds no resumable training state; start without --resume.")
    suffix = ""
    if is_fsdp(model):
        if progress.get("world_size") != world_size:
            raise LabradorError(f"{target} was written by {progress.get('world_size')} FSDP processes; resume "
                                f"with the same --nproc-per-node x --nnodes (now {world_size}).")
        suffix = f"_rank{rank}"
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
        from torch.distributed.fsdp import StateDictType

        with FSDP.state_dict_type(model, StateDictType.LOCAL_STATE_DICT):
            model.load_state_dict(torch.load(target / f"model{suffix}.pt", weights_only=False))
    else:
        unwrap(model).load_state_dict(torch.load(target / "model.pt", weights_only=False), strict=False)
    optimizer.load_state_dict(torch.load(target / f"optimizer{suffix}.pt", weights_only=False))
    set_rng_state(torch.load(target / f"rng{suffix}.pt", weights_only=False))
    scheduler.load_state_dict(torch.load(target / "scheduler.pt", weights_only=False))
    return progress
