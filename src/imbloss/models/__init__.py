"""Networks: each takes `input_shape` (C, H, W) and `num_classes` and returns logits [N, C]."""

from imbloss.models.cnn import FashionMNISTCNN, SimpleCNN
from imbloss.models.mlp import MLP
from imbloss.models.resnet import CifarResNet18

__all__ = ["MLP", "CifarResNet18", "FashionMNISTCNN", "SimpleCNN"]
