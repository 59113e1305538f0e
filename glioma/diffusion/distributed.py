"""Data-parallel training across processes started by ``torchrun`` (gloo on CPU, nccl on GPU).

Every rank sees the same seeded batch order and takes its share of each batch, so the
gradient all-reduce averages to the full batch's gradient: N processes train the same model
a single process would (up to floating-point summation order).
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_distributed(device: torch.device) -> bool:
    """Join the process group when launched by torchrun; True when running distributed."""
    if world_size() <= 1:
        return False
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend)
    return True


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def is_main_process() -> bool:
    return rank() == 0


def local_share(batch: int) -> tuple[slice | list[int], float]:
    """This rank's rows of a batch of ``batch`` rows, and the factor for its mean loss.

    DDP averages gradients over ranks; scaling each rank's mean loss by
    (rows here * world size / batch) makes that average the whole batch's mean. A rank left
    without rows takes row 0 with factor 0, so every rank still joins the all-reduce.
    """
    if not dist.is_initialized():
        return slice(None), 1.0
    world = dist.get_world_size()
    rows = list(range(rank(), batch, world))
    if not rows:
        return [0], 0.0
    return rows, len(rows) * world / batch


def broadcast(value: Any) -> Any:
    """Rank 0's ``value`` on every rank."""
    if not dist.is_initialized():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
