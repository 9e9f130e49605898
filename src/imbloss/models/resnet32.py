"""ResNet-32 of He et al. (2016, Sec. 4.2), the backbone of the long-tail literature on CIFAR-LT.

The CIFAR ResNet of depth 6n + 2 with n = 5: a 3×3 convolution to 16 channels, then three stages
of n basic blocks (two 3×3 convolutions with batch normalisation, ReLU after the sum) at 16, 32
and 64 channels, the first block of the second and third stage with stride 2, global average
pooling and a fully connected layer. The shortcut of a block that changes shape is the paper's
option A, parameter-free: the input subsampled by 2 and zero-padded to the new width (He et al.,
Sec. 3.3, 4.2). 0.46 M parameters (He et al., Table 6): 464,154 with 10 classes.

``cosine_classifier=True`` replaces the last layer by the cosine classifier of LDAM's reference
implementation (Cao et al. 2019, code at kaidic/LDAM-DRW): the logits are
``z_j = <x / ||x||, w_j / ||w_j||>``, the cosine between the pooled features and class j's weight
vector (no bias), in [-1, 1]; the LDAM losses scale them by ``s``. Convolution and linear weights
are drawn with Kaiming-normal initialisation (fan-in), batch normalisation starts at 1 and 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

STAGE_WIDTHS = (16, 32, 64)


class ZeroPadShortcut(nn.Module):
    """Option A: the input subsampled by ``stride`` and zero-padded from ``width_in`` to
    ``width_out`` channels (half of the new channels on each side)."""

    def __init__(self, width_in: int, width_out: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.pad_before = (width_out - width_in) // 2
        self.pad_after = width_out - width_in - self.pad_before

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, self.pad_before, self.pad_after))


class BasicBlock(nn.Module):
    """``relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))`` with 3×3 convolutions."""

    def __init__(self, width_in: int, width_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width_in, width_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width_out)
        self.conv2 = nn.Conv2d(width_out, width_out, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width_out)
        reshaped = stride != 1 or width_in != width_out
        self.shortcut = ZeroPadShortcut(width_in, width_out, stride) if reshaped else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CosineClassifier(nn.Module):
    """Logits ``z_j = cos(x, w_j)``: normalised features times normalised class weights."""

    def __init__(self, features: int, num_classes: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, features))
        nn.init.kaiming_normal_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=1) @ F.normalize(self.weight, dim=1).T


class ResNet32(nn.Module):
    """ResNet-32 for 32×32 images (``blocks`` per stage, default 5); returns logits [N, C]."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        blocks: int = 5,
        cosine_classifier: bool = False,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(input_shape[0], STAGE_WIDTHS[0], 3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(STAGE_WIDTHS[0]),
            nn.ReLU(),
        )
        stages: list[nn.Module] = []
        width_in = STAGE_WIDTHS[0]
        for stage, width in enumerate(STAGE_WIDTHS):
            for block in range(blocks):
                stride = 2 if stage > 0 and block == 0 else 1
                stages.append(BasicBlock(width_in, width, stride))
                width_in = width
        self.stages = nn.Sequential(*stages)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier: nn.Module = (
            CosineClassifier(width_in, num_classes)
            if cosine_classifier
            else nn.Linear(width_in, num_classes)
        )
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(module.weight)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.stages(self.stem(images))))
