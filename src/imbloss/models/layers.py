"""Building blocks shared by the model families."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import nn


def flat_size(features: nn.Module, input_shape: tuple[int, int, int]) -> int:
    """Number of values per sample that `features` outputs for one (C, H, W) input, found by
    running it once on zeros, so no layer width is typed twice."""
    with torch.no_grad():
        return math.prod(features(torch.zeros(1, *input_shape)).shape[1:])


def dense_stack(
    width_in: int, hidden: Sequence[int], num_classes: int, activation: type[nn.Module]
) -> nn.Sequential:
    """`Linear - activation` for each hidden width, then `Linear` to `num_classes` logits."""
    widths = [width_in, *hidden]
    layers: list[nn.Module] = []
    for fan_in, fan_out in itertools.pairwise(widths):
        layers += [nn.Linear(fan_in, fan_out), activation()]
    return nn.Sequential(*layers, nn.Linear(widths[-1], num_classes))
