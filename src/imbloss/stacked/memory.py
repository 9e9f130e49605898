"""How many members fit in memory at once, and the split of a group into passes.

One member's footprint is estimated as ``4 bytes × (4 P + 3 A)``: P the network's parameter count
(weights, gradients and two optimiser moments — Adam's; SGD needs less) and A the number of values
its layers output for one training batch (kept for the backward pass, their gradients, and a
working copy), counted by running the network once on a batch of zeros. The available memory is
the free GPU memory (``torch.cuda.mem_get_info``) or, on the CPU, ``MemAvailable`` of
``/proc/meminfo``; a pass holds at most ``fraction`` of it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

BYTES_PER_VALUE = 4


def activation_count(net: nn.Module, batch: torch.Tensor) -> int:
    """Values output by the leaf modules of ``net`` on ``batch`` (one forward pass, no grad)."""
    total = 0

    def count(_module: nn.Module, _inputs: object, output: object) -> None:
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel()

    leaves = [m for m in net.modules() if not list(m.children())]
    handles = [m.register_forward_hook(count) for m in leaves]
    try:
        with torch.no_grad():
            net(batch)
    finally:
        for handle in handles:
            handle.remove()
    return total


def member_bytes(net: nn.Module, batch_shape: Sequence[int]) -> int:
    """Estimated bytes one stacked member needs: ``4 × (4 P + 3 A)`` (see the module docstring)."""
    params = sum(p.numel() for p in net.parameters())
    was_training = net.training
    net.eval()  # BatchNorm statistics untouched
    try:
        activations = activation_count(net, torch.zeros(tuple(batch_shape)))
    finally:
        net.train(was_training)
    return BYTES_PER_VALUE * (4 * params + 3 * activations)


def available_bytes(device: torch.device) -> int:
    """Free memory of ``device``: GPU free memory, or the CPU's ``MemAvailable``."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("cannot read MemAvailable from /proc/meminfo")


def split_passes(size: int, max_members: int) -> list[range]:
    """``range(size)`` cut into ``ceil(size / max_members)`` consecutive passes of near-equal
    length (the first ones one longer), none longer than ``max_members``."""
    count = math.ceil(size / max(1, max_members))
    base, extra = divmod(size, count)
    passes, start = [], 0
    for index in range(count):
        length = base + (1 if index < extra else 0)
        passes.append(range(start, start + length))
        start += length
    return passes


@dataclass(frozen=True)
class PassPlan:
    """How a group of ``size`` members is trained: ``member_bytes`` each, ``free_bytes``
    available, ``fit`` members fitting in ``fraction`` of it, cut into ``passes``."""

    size: int
    member_bytes: int
    free_bytes: int
    fraction: float
    fit: int
    max_stack: int | None
    passes: list[range]

    def describe(self) -> str:
        """One line for the log: the estimate and the passes it gives."""
        return (
            f"one member needs ~{self.member_bytes / 2**20:.0f} MiB, "
            f"{self.free_bytes / 2**20:.0f} MiB free ({100 * self.fraction:.0f}% usable: "
            f"{self.fit} members), max_stack={self.max_stack} -> {len(self.passes)} pass(es) of "
            f"{[len(p) for p in self.passes]}"
        )


def plan_passes(
    size: int,
    net: nn.Module,
    batch_shape: Sequence[int],
    device: torch.device,
    fraction: float,
    max_stack: int | None = None,
) -> PassPlan:
    """The passes of a group of ``size`` members of ``net`` on ``device`` (training batches of
    ``batch_shape``): as many members at once as ``fraction`` of the free memory holds by
    :func:`member_bytes`, at most ``max_stack``."""
    need = member_bytes(net, batch_shape)
    free = available_bytes(device)
    fit = max(1, int(fraction * free) // need)
    passes = split_passes(size, fit if max_stack is None else min(fit, max_stack))
    return PassPlan(size, need, free, fraction, fit, max_stack, passes)
