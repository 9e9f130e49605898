"""The small convolutional networks of the first source (Sec. IV-B).

- `FashionMNISTCNN` (multiclass Fashion-MNIST): Conv-ReLU-Conv-ReLU-MaxPool-FC-ReLU-Dropout-FC;
  defaults conv 32 3×3, conv 64 3×3 (no padding), max-pool 2, FC 128, dropout 0.5, FC C. The
  second ReLU runs after the max-pool, on a quarter of the values: ReLU is monotone, so
  ``relu(max(window)) = max(relu(window))``, and the gradients agree too (the window's first
  maximum gets it; where that maximum is <= 0 both give 0), bit for bit. Its flatten and max-pool
  keep the channels-last layout in the backward pass on the CPU
  (:mod:`imbloss.models.channels_last`, the same numbers).
- `SimpleCNN` (binary CIFAR-10/100): two convolution layers followed by three fully connected
  layers; defaults conv 32 5×5 and conv 64 5×5 ("same" padding), each followed by ReLU and
  max-pool 2, then FC 256 - ReLU - FC 128 - ReLU - FC C.
Both return logits [N, C]; the flattened width follows from `input_shape`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from imbloss.models.channels_last import Flatten, MaxPool2d
from imbloss.models.layers import dense_stack, flat_size


class FashionMNISTCNN(nn.Module):
    """Conv-ReLU-Conv-ReLU-MaxPool-FC-ReLU-Dropout-FC (computed as Conv-ReLU-Conv-MaxPool-ReLU-...,
    the same function; see the module docstring)."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        channels: Sequence[int] = (32, 64),
        kernel_size: int = 3,
        hidden: int = 128,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        first, second = channels
        self.features = nn.Sequential(
            nn.Conv2d(input_shape[0], first, kernel_size),
            nn.ReLU(),
            nn.Conv2d(first, second, kernel_size),
            MaxPool2d(2),
            nn.ReLU(),
            Flatten(),
        )
        self.classifier = nn.Sequential(
            nn.Linear(flat_size(self.features, tuple(input_shape)), hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(images))


class SimpleCNN(nn.Module):
    """Two Conv-ReLU-MaxPool stages, then three fully connected layers."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        channels: Sequence[int] = (32, 64),
        kernel_size: int = 5,
        hidden: Sequence[int] = (256, 128),
    ) -> None:
        super().__init__()
        first, second = channels
        self.features = nn.Sequential(
            nn.Conv2d(input_shape[0], first, kernel_size, padding=kernel_size // 2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(first, second, kernel_size, padding=kernel_size // 2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.classifier = dense_stack(
            flat_size(self.features, tuple(input_shape)), hidden, num_classes, nn.ReLU
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(images))
