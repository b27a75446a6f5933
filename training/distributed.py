"""The processes of a run: torchrun's process group and device, and the collectives the loop needs.

Started with ``torchrun`` (WORLD_SIZE > 1) a run is DistributedDataParallel: NCCL on GPUs, gloo on CPU;
rank r trains on every world-th batch and rank 0 validates and writes.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .errors import TrainingError


@dataclass(frozen=True)
class Processes:
    """This process's place in the run: ``rank`` of ``world``, and the device it computes on."""

    world: int
    rank: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that validates, writes and speaks for the run."""
        return self.rank == 0


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when there is one), ``cpu``, ``cuda`` or ``cuda:N``; CUDA asked for but absent is refused."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise TrainingError(f"device {name!r} asked for, but CUDA is not available here; use --device cpu")
    return dev


def setup(device: str) -> Processes:
    """Join torchrun's process group when started by it (once per process); else one process on ``device``."""
    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    if world > 1 and not dist.is_initialized():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        use_cuda = device != "cpu" and torch.cuda.is_available()
        if use_cuda:
            torch.cuda.set_device(local)
        dist.init_process_group("nccl" if use_cuda else "gloo")
        return Processes(world, rank, torch.device("cuda", local) if use_cuda else torch.device("cpu"))
    return Processes(world, rank, resolve_device(device))


def broadcast(value: float | None, procs: Processes) -> float | None:
    """Rank 0's value on every rank (None travels as NaN)."""
    if not procs.distributed:
        return value
    t = torch.tensor([math.nan if value is None else float(value)], device=procs.device)
    dist.broadcast(t, 0)
    v = float(t)
    return None if math.isnan(v) else v


def mean(value: float, procs: Processes) -> float:
    """The mean of ``value`` over the ranks."""
    if not procs.distributed:
        return value
    t = torch.tensor([value], device=procs.device)
    dist.all_reduce(t)
    return float(t) / procs.world


def barrier(procs: Processes) -> None:
    if procs.distributed:
        dist.barrier()
