"""ResNet-18, CIFAR variant (first source, Sec. IV-B: multiclass CIFAR-10).

torchvision's ResNet-18 (BasicBlock, [2, 2, 2, 2], widths 64-128-256-512, global average pool, FC C)
with the ImageNet stem (7×7 stride-2 conv + 3×3 max-pool) replaced by a 3×3 stride-1 conv and no
max-pool, so 32×32 inputs keep their resolution in the first stage.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torchvision.models import resnet18


class CifarResNet18(nn.Module):
    """ResNet-18 with a 3×3 stride-1 stem and no max-pool; returns logits [N, C]."""

    def __init__(self, input_shape: Sequence[int], num_classes: int) -> None:
        super().__init__()
        self.network = resnet18(weights=None, num_classes=num_classes)
        self.network.conv1 = nn.Conv2d(input_shape[0], 64, 3, stride=1, padding=1, bias=False)
        nn.init.kaiming_normal_(self.network.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.network.maxpool = nn.Identity()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(images)
