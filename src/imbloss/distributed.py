"""Data-parallel training (DDP) that keeps batch-level losses exact: gather the global batch.

PF-loss, PFH, MFE and MSFE average over the samples of each class *in the mini-batch*; under DDP
each process holds only its part of it (:class:`imbloss.data.batches.TensorBatches` shards every
global batch by rank). :func:`gather_batch` concatenates the parts of all processes, in rank
order, with gradients: ``torch.distributed.nn.functional.all_gather`` sums, in its backward, the
gradients that every process's (identical) loss sends to each part, so process r's logits get
``W * dL/dz_r``, and DDP's average over the W processes gives exactly the gradient a single process
would compute on the whole batch. Every loss of the registry is taken this way under DDP.
:func:`gather_all` gathers evaluation outputs once, at the end of an evaluation epoch.
Outside distributed training both return their inputs unchanged.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor
from torch.distributed.nn.functional import all_gather as all_gather_with_grad


def world_size() -> int:
    """The number of processes of the default process group (1 outside distributed training)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _sizes(length: int, device: torch.device) -> list[int]:
    """Every process's first-dimension size, in rank order."""
    mine = torch.tensor([length], device=device)
    sizes = [torch.zeros_like(mine) for _ in range(world_size())]
    dist.all_gather(sizes, mine)
    return [int(size) for size in sizes]


def _pad_rows(tensor: Tensor, rows: int) -> Tensor:
    """``tensor`` with ``rows`` zero rows appended (all_gather needs equal shapes)."""
    return F.pad(tensor, (0, 0) * (tensor.ndim - 1) + (0, rows))


def gather_all(tensor: Tensor) -> Tensor:
    """The concatenation over processes, in rank order, of ``tensor`` (no gradient)."""
    if world_size() == 1:
        return tensor
    sizes = _sizes(len(tensor), tensor.device)
    padded = _pad_rows(tensor, max(sizes) - len(tensor))
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([part[:size] for part, size in zip(parts, sizes, strict=True)])


def gather_batch(logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """The global batch's ``logits`` (with gradients to every process's part) and ``target``."""
    if world_size() == 1:
        return logits, target
    sizes = _sizes(len(target), target.device)
    padded = _pad_rows(logits, max(sizes) - len(logits))
    parts = all_gather_with_grad(padded.contiguous())
    global_logits = torch.cat([part[:size] for part, size in zip(parts, sizes, strict=True)])
    return global_logits, gather_all(target)
