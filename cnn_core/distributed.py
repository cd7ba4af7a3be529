"""Data-parallel training helpers for the trainer (``TrainConfig.workers > 1`` under Ray Train).

Every helper is a no-op unless ``torch.distributed`` is initialised with more than one process,
so the single-process trainer pays nothing. Each rank trains on a strided slice of every batch
(the same permutation and augmentation on every rank, so the global batch is the book's batch),
DistributedDataParallel averages the gradients, and the per-epoch statistics and the stop
decision are summed across ranks so that every rank stops at the same batch.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) without an initialised process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shard(indices: torch.Tensor) -> torch.Tensor:
    """This rank's part of a batch's indices."""
    rank, size = world()
    return indices[rank::size] if size > 1 else indices


def wrap(model: nn.Module) -> nn.Module:
    """``model`` in DistributedDataParallel when there are several ranks (its parameters are
    shared: checkpoints keep saving the plain module)."""
    return nn.parallel.DistributedDataParallel(model) if world()[1] > 1 else model


def all_sum(values: list[float]) -> list[float]:
    """``values`` summed element-wise over the ranks."""
    if world()[1] == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


def any_rank(flag: bool) -> bool:
    """True if ``flag`` is true on any rank (every rank must call it at the same point)."""
    return all_sum([float(flag)])[0] > 0 if world()[1] > 1 else flag
