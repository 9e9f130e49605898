"""The memory layout of convolution weights: channels-last on the CPU, PyTorch's default elsewhere.

One rule (:func:`prefers_channels_last`) decides, for both training engines:

- :func:`use_preferred_layout` lays out one network (the single engine, and every post-fit
  evaluation);
- :func:`stacked_preferred_layout` lays out a stacked ``[K, ...]`` tensor so that every member's
  slice has the layout its own network would have (the stacked engine).

Measured on a 2-core CPU (AMD EPYC) on 2026-11-25, with glibc malloc tuned as ``train.py`` does
(``benchmarks/bench_layout.py``, load average below 1.5): ``FashionMNISTCNN`` with channels-last
weights (the 1-channel input left as it is) evaluates 1,000 images 1.66x faster (0.231 s ->
0.139 s; ``max_pool2d`` alone took 0.103 s in NCHW, 0.010 s channels-last) and takes a training
step (batch 500, Adam) 1.00-1.07x faster (0.256-0.272 s -> 0.254 s); a ``CifarResNet18`` training
step (batch 64) is 1.09-1.10x faster (1.12-1.14 s -> 1.03-1.04 s). A stacked member's evaluation
forward (loop mode) gains alike (0.234 s -> 0.158 s). Outputs differ by float rounding only
(~1e-7). Not measured on a GPU yet: there the layout is left as it is (the GPU choice is a
follow-up).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

CONVOLUTION_WEIGHT_DIM = 4  # [out, in, kh, kw]: what channels-last applies to


def prefers_channels_last(device: torch.device) -> bool:
    """Whether networks on ``device`` get channels-last convolution weights: on the CPU only
    (measured there; GPUs are not measured yet and keep PyTorch's default layout)."""
    return device.type == "cpu"


def use_preferred_layout(net: nn.Module, device: torch.device) -> nn.Module:
    """Give ``net``'s 4-D parameters and buffers the layout preferred on ``device``, in place.

    On the CPU they become channels-last; the Parameter and buffer objects stay the same (only
    their ``data`` changes), so optimisers and references holding them remain valid. Elsewhere
    ``net`` is left unchanged. Idempotent; returns ``net``.
    """
    if prefers_channels_last(device):
        for tensor in (*net.parameters(), *net.buffers()):
            if tensor.dim() == CONVOLUTION_WEIGHT_DIM:
                tensor.data = channels_last_strides(tensor.data)
    return net


def channels_last_strides(value: Tensor) -> Tensor:
    """``value`` [O, I, kh, kw] with the strides of channels-last, also where ``I`` is 1.

    ``contiguous(memory_format=channels_last)`` keeps a tensor whose strides already pass for
    channels-last, and with one input channel (the first convolution of a grey-scale network)
    the default strides do: oneDNN then reads the weight as NCHW and the convolution writes its
    output NCHW, so the layers after it compute on mismatched layouts (a Fashion-MNIST bf16
    epoch took 1.3x a bare channels-last loop, measured 2026-12-03). ``to`` sets the strides.
    """
    return value.to(memory_format=torch.channels_last)


def stacked_preferred_layout(value: Tensor, device: torch.device) -> Tensor:
    """``value`` (members stacked along dim 0) laid out so that each member's slice ``value[k]``
    has the layout :func:`use_preferred_layout` gives one network on ``device``.

    On the CPU a stack of 4-D tensors ``[K, O, I, kh, kw]`` is stored member by member, each
    member channels-last (``[K, O, kh, kw, I]`` in memory); other tensors and devices are returned
    as they are.
    """
    if not prefers_channels_last(device) or value.dim() != CONVOLUTION_WEIGHT_DIM + 1:
        return value
    # fresh strides, as in channels_last_strides: with one input channel the permuted view passes
    # for contiguous, and ``contiguous()`` would hand the NCHW tensor back unchanged
    stored = torch.empty_like(value.permute(0, 1, 3, 4, 2), memory_format=torch.contiguous_format)
    return stored.permute(0, 1, 4, 2, 3).copy_(value)
