"""Multi-process training under `torchrun`: process-group setup from the environment and the few
collectives the loop and the methods need. Every function is a no-op (or the identity) in a
single-process run, so callers never branch on it."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from glt.errors import GLTError


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def launched() -> bool:
    """True when started by torchrun (or another launcher) with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device_name: str) -> torch.device:
    """Join the process group torchrun describes (NCCL on CUDA, gloo on CPU) and return this rank's
    device; a single-process run just resolves `device_name`."""
    if device_name == "auto":
        device_name = "cuda" if torch.cuda.is_available() else "cpu"
    if device_name.startswith("cuda") and not torch.cuda.is_available():
        raise GLTError(f"device '{device_name}' requested but CUDA is not available")
    if not launched():
        return torch.device(device_name)
    cuda = device_name.startswith("cuda")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if not active():
        kwargs = {"device_id": device} if cuda else {}
        dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(minutes=30), **kwargs)
    return device


def teardown() -> None:
    if active():
        dist.destroy_process_group()


def _comm_device() -> torch.device:
    # NCCL moves only CUDA tensors; gloo only CPU ones
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def barrier() -> None:
    if active():
        dist.barrier()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum of `t` over ranks (in place where the tensor lives on the communication device)."""
    if not active():
        return t
    comm = t.to(_comm_device())
    dist.all_reduce(comm)
    if comm is not t:
        t.copy_(comm)
    return t


def mean_over_ranks(t: torch.Tensor) -> torch.Tensor:
    if not active():
        return t
    return all_reduce_sum(t.clone()) / world_size()


def all_gather_rows(t: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's `t` along dim 0 (rank order); ranks may hold different numbers of rows."""
    if not active():
        return t
    dev = _comm_device()
    n = torch.tensor([len(t)], device=dev)
    sizes = [torch.zeros_like(n) for _ in range(world_size())]
    dist.all_gather(sizes, n)
    sizes = [int(s) for s in sizes]
    padded = torch.zeros((max(sizes), *t.shape[1:]), dtype=t.dtype, device=dev)
    padded[: len(t)] = t.to(dev)
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return torch.cat([p[:s] for p, s in zip(parts, sizes)]).to(t.device)


def shard(n: int) -> np.ndarray:
    """This rank's rows of an evaluation pass over `n` rows (every row exactly once over all ranks)."""
    return np.arange(rank(), n, world_size())


def gather_object(obj: Any) -> list[Any] | None:
    """Every rank's `obj` on rank 0 (None elsewhere); `[obj]` in a single-process run."""
    if not active():
        return [obj]
    out = [None] * world_size() if is_main() else None
    dist.gather_object(obj, out, dst=0)
    return out


def broadcast_object(obj: Any) -> Any:
    """Rank 0's `obj` on every rank."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
