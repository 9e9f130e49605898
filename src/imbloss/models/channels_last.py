"""Layers whose backward pass keeps the channels-last layout on the CPU (the same numbers).

With channels-last weights (:mod:`imbloss.models.memory_layout`) the activations of a CNN are
channels-last, but two of PyTorch's backward passes leave that layout, and each costs a copy of
the activation in the largest tensors of ``fmnist_cnn``:

- :class:`Flatten`: the gradient of ``flatten`` comes back in PyTorch's default layout, and
  ``max_pool2d``'s backward on a channels-last input first copies it to channels-last, through a
  slow path (about a third of a bf16 training step of ``fmnist_cnn``, measured 2026-12-03). This
  one hands the gradient back channels-last, which is one fast copy.
- :class:`MaxPool2d` (non-overlapping windows only: kernel = stride, no padding, no dilation):
  the backward pass puts each gradient at its window's maximum with ``max_unpool2d``, which on the
  CPU is faster than ``max_pool2d``'s own backward and writes the same values (each input
  position belongs to one window, so no sum is involved).

Both compute what ``nn.Flatten`` and ``nn.MaxPool2d`` compute, bit for bit, forward and backward.
They fall back to those layers for inputs that are not channels-last CPU tensors and inside
``torch.func`` transforms (``vmap`` of the stacked engine); :class:`MaxPool2d` also under
``trainer.deterministic=true`` (PyTorch refuses ``max_unpool2d`` there).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

IMAGE_DIM = 4  # [N, C, H, W]


def _channels_last_cpu(x: Tensor) -> bool:
    """Whether ``x`` is a plain (not functorch-wrapped) channels-last 4-D CPU tensor."""
    return (
        x.dim() == IMAGE_DIM
        and x.device.type == "cpu"
        and not torch._C._functorch.is_functorch_wrapped_tensor(x)
        and x.is_contiguous(memory_format=torch.channels_last)
    )


class _FlattenChannelsLast(torch.autograd.Function):
    """``x.flatten(1)`` whose gradient is returned in ``x``'s channels-last layout."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: Tensor) -> Tensor:
        ctx.shape = x.shape
        return x.flatten(1)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> Tensor:
        return grad.reshape(ctx.shape).contiguous(memory_format=torch.channels_last)


class Flatten(nn.Flatten):
    """``nn.Flatten`` from dimension 1 whose backward keeps a channels-last input's layout."""

    def __init__(self) -> None:
        super().__init__(start_dim=1, end_dim=-1)

    def forward(self, input: Tensor) -> Tensor:
        if input.requires_grad and _channels_last_cpu(input):
            return _FlattenChannelsLast.apply(input)
        return super().forward(input)


class _MaxPoolUnpoolBackward(torch.autograd.Function):
    """``max_pool2d`` with ``kernel`` = stride whose backward is ``max_unpool2d``."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: Tensor, kernel: int) -> Tensor:
        output, indices = F.max_pool2d_with_indices(x, kernel)
        ctx.save_for_backward(indices)
        ctx.kernel, ctx.size = kernel, x.shape[-2:]
        return output

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> tuple[Tensor, None]:
        (indices,) = ctx.saved_tensors
        grad = grad.contiguous(memory_format=torch.channels_last)
        return F.max_unpool2d(grad, indices, ctx.kernel, output_size=ctx.size), None


class MaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d(kernel_size)`` (stride = kernel) with the faster backward on the CPU."""

    def __init__(self, kernel_size: int) -> None:
        super().__init__(kernel_size)

    def forward(self, input: Tensor) -> Tensor:
        # PyTorch flags max_unpool2d as nondeterministic (for overlapping indices, not ours)
        deterministic = torch.are_deterministic_algorithms_enabled()
        if input.requires_grad and _channels_last_cpu(input) and not deterministic:
            return _MaxPoolUnpoolBackward.apply(input, self.kernel_size)
        return super().forward(input)
