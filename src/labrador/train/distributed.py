"""One code path for one process and for torchrun: NCCL on GPUs, gloo on CPU; DDP or FSDP wrapping."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labrador.errors import LabradorError


@dataclass
class DistEnv:
    rank: int
    world_size: int
    local_rank: int
    device: Any
    autocast_dtype: Any | None  # torch.bfloat16 or None (float32)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup(dtype: str = "auto") -> DistEnv:
    """Read torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK) and join the process group if there is one."""
    import torch
    import torch.distributed as dist

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    wants_bf16 = dtype == "bf16" or (dtype == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported())
    return DistEnv(rank, world_size, local_rank, device, torch.bfloat16 if wants_bf16 else None)


def teardown() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(value: float, env: DistEnv) -> float:
    if not env.distributed:
        return value
    import torch
    import torch.distributed as dist

    tensor = torch.tensor([value], dtype=torch.float64, device=env.device if env.device.type == "cuda" else "cpu")
    dist.all_reduce(tensor)
    return float(tensor.item())


def barrier(env: DistEnv) -> None:
    if env.distributed:
        import torch.distributed as dist

        dist.barrier()


def wrap(model: Any, env: DistEnv, strategy: str) -> Any:
    """DDP on CPU and for small models; FSDP (full sharding, one unit per decoder layer) on GPUs when asked."""
    if not env.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    if strategy == "fsdp" and env.device.type == "cuda":
        import functools

        from torch.distributed.fsdp import FullyShardedDataParallel
        from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy

        layer_classes = {type(layer) for layer in _decoder_layers(model)}
        policy = functools.partial(transformer_auto_wrap_policy, transformer_layer_cls=layer_classes)
        return FullyShardedDataParallel(model, auto_wrap_policy=policy, device_id=env.device,
                                        use_orig_params=True)
    device_ids = [env.device.index] if env.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def _decoder_layers(model: Any) -> Iterator[Any]:
    for module in model.modules():
        if type(module).__name__.endswith("DecoderLayer"):
            yield module


def local_gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:  # noqa: BLE001 - no torch CUDA at all means no GPUs
        return 0


def launch_torchrun(options_file: Path, nproc_per_node: int, nnodes: int, node_rank: int,
                    rdzv_endpoint: str) -> int:
    """Run `python -m torch.distributed.run ... -m labrador.train.worker OPTIONS` and wait for it."""
    if nproc_per_node < 1:
        raise LabradorError("--nproc-per-node must be at least 1.")
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc_per_node}",
               f"--nnodes={nnodes}"]
    if nnodes > 1:
        command += [f"--node-rank={node_rank}", "--rdzv-backend=c10d", f"--rdzv-endpoint={rdzv_endpoint}"]
    else:
        command += ["--standalone"]
    command += ["-m", "labrador.train.worker", str(options_file)]
    if shutil.which(sys.executable) is None:
        raise LabradorError(f"Python interpreter {sys.executable} not found; cannot start torchrun.")
    return subprocess.call(command)
