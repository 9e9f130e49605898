"""Networks: each takes `input_shape` (C, H, W) and `num_classes` and returns logits [N, C].

The memory layout their weights get on a device: :mod:`imbloss.models.memory_layout`.
"""

from imbloss.models.cnn import FashionMNISTCNN, SimpleCNN
from imbloss.models.memory_layout import (
    prefers_channels_last,
    stacked_preferred_layout,
    use_preferred_layout,
)
from imbloss.models.mlp import MLP
from imbloss.models.resnet import CifarResNet18
from imbloss.models.resnet32 import ResNet32

__all__ = [
    "MLP",
    "CifarResNet18",
    "FashionMNISTCNN",
    "ResNet32",
    "SimpleCNN",
    "prefers_channels_last",
    "stacked_preferred_layout",
    "use_preferred_layout",
]
