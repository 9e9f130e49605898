"""Multilayer perceptron of the second source (Sec. III-2): logistic hidden units.

Flattens the image, then `Linear - Sigmoid` per hidden width, then a linear output layer:
`h_0 = flatten(x)`, `h_k = σ(W_k h_{k−1} + b_k)`, logits `= W_out h_K + b_out`, σ(z) = 1/(1+e^(−z)).
Widths: 1000-300-100 for household, 1000-100-10 for the tree pairs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from imbloss.models.layers import dense_stack


class MLP(nn.Module):
    """Flatten, then sigmoid hidden layers of the given widths, then a linear layer to C logits."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        hidden: Sequence[int] = (1000, 300, 100),
    ) -> None:
        super().__init__()
        self.network = nn.Sequential(
            nn.Flatten(), dense_stack(math.prod(input_shape), hidden, num_classes, nn.Sigmoid)
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(images)
