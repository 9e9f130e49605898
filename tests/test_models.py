"""Models: architecture as specified, forward and backward on every configured input shape."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from imbloss.models import MLP, CifarResNet18, FashionMNISTCNN, ResNet32, SimpleCNN
from imbloss.models.resnet32 import BasicBlock, CosineClassifier, ZeroPadShortcut

FASHION = (1, 28, 28)
CIFAR = (3, 32, 32)
SYNTHETIC = (1, 8, 8)


@pytest.mark.parametrize(
    ("model_class", "input_shape", "num_classes"),
    [
        (FashionMNISTCNN, FASHION, 10),
        (FashionMNISTCNN, SYNTHETIC, 10),
        (SimpleCNN, CIFAR, 2),
        (SimpleCNN, SYNTHETIC, 2),
        (CifarResNet18, CIFAR, 10),
        (CifarResNet18, SYNTHETIC, 10),
        (ResNet32, CIFAR, 10),
        (ResNet32, SYNTHETIC, 3),
        (MLP, CIFAR, 2),
        (MLP, SYNTHETIC, 10),
    ],
)
def test_forward_backward_reaches_every_parameter(model_class, input_shape, num_classes):
    torch.manual_seed(0)
    network = model_class(input_shape=input_shape, num_classes=num_classes)
    logits = network(torch.randn(3, *input_shape))
    assert logits.shape == (3, num_classes)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 1])).backward()
    for name, parameter in network.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name


def test_fmnist_cnn_layers():
    network = FashionMNISTCNN(input_shape=FASHION, num_classes=10)
    layers = [*network.features, *network.classifier]
    kinds = [type(layer).__name__ for layer in layers]
    # the second ReLU after the pooling: the same function (test_channels_last_layers.py)
    assert kinds == ["Conv2d", "ReLU", "Conv2d", "MaxPool2d", "ReLU", "Flatten",
                     "Linear", "ReLU", "Dropout", "Linear"]  # fmt: skip
    # 28 -> 26 -> 24 (3×3 convs) -> 12 (pool): 64 · 12 · 12 inputs to the 128-unit layer
    assert (layers[6].in_features, layers[6].out_features) == (64 * 12 * 12, 128)
    assert layers[8].p == 0.5


def test_simple_cnn_has_two_convs_and_three_linear_layers():
    network = SimpleCNN(input_shape=CIFAR, num_classes=2)
    convs = [m for m in network.modules() if isinstance(m, nn.Conv2d)]
    linears = [m for m in network.modules() if isinstance(m, nn.Linear)]
    assert [c.out_channels for c in convs] == [32, 64]
    # 32 -> 16 -> 8 after two "same" convs with 2×2 pooling
    assert [(m.in_features, m.out_features) for m in linears] == [
        (64 * 8 * 8, 256), (256, 128), (128, 2),
    ]  # fmt: skip


def test_cifar_resnet18_stem_and_size():
    network = CifarResNet18(input_shape=CIFAR, num_classes=10)
    stem = network.network.conv1
    assert (stem.kernel_size, stem.stride, stem.padding) == ((3, 3), (1, 1), (1, 1))
    assert isinstance(network.network.maxpool, nn.Identity)
    # the CIFAR ResNet-18 with 10 classes has 11,173,962 parameters
    assert sum(p.numel() for p in network.parameters()) == 11_173_962


@pytest.mark.parametrize(
    ("hidden", "input_shape", "widths"),
    [
        ([1000, 300, 100], CIFAR, [(3072, 1000), (1000, 300), (300, 100), (100, 2)]),
        ([1000, 100, 10], CIFAR, [(3072, 1000), (1000, 100), (100, 10), (10, 2)]),
    ],
)
def test_mlp_widths_and_logistic_units(hidden, input_shape, widths):
    network = MLP(input_shape=input_shape, num_classes=2, hidden=hidden)
    linears = [m for m in network.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == widths
    assert sum(isinstance(m, nn.Sigmoid) for m in network.modules()) == len(hidden)
    assert not any(isinstance(m, nn.ReLU) for m in network.modules())


def test_dropout_only_in_training_mode():
    network = FashionMNISTCNN(input_shape=FASHION, num_classes=10).eval()
    images = torch.randn(2, *FASHION)
    assert torch.equal(network(images), network(images))


@pytest.mark.parametrize(
    ("num_classes", "cosine", "parameters"),
    [
        # He et al. 2016, Table 6: ResNet-32 has 0.46 M parameters. By hand: stem 3·16·9 + 2·16;
        # stage 1: 5 blocks of 2·(16·16·9 + 2·16); stage 2: 16·32·9 + 32·32·9 + 4·32, then 4 of
        # 2·(32·32·9 + 2·32); stage 3 alike at 64; the last layer 64·C (+ C biases).
        (10, False, 464_154),
        (100, False, 470_004),
        (10, True, 464_144),  # cosine classifier: no bias
    ],
)
def test_resnet32_has_the_papers_parameter_count(num_classes, cosine, parameters):
    network = ResNet32(input_shape=CIFAR, num_classes=num_classes, cosine_classifier=cosine)
    assert sum(p.numel() for p in network.parameters()) == parameters


def test_resnet32_is_three_stages_of_five_basic_blocks():
    network = ResNet32(input_shape=CIFAR, num_classes=10)
    blocks = [m for m in network.modules() if isinstance(m, BasicBlock)]
    assert [b.conv2.out_channels for b in blocks] == [16] * 5 + [32] * 5 + [64] * 5
    assert [b.conv1.stride for b in blocks].count((2, 2)) == 2
    assert sum(isinstance(b.shortcut, ZeroPadShortcut) for b in blocks) == 2
    # 1 stem + 15 blocks x 2 convolutions + 1 fully connected layer = 32 weight layers
    weighted = [m for m in network.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert len(weighted) == 32
    features = network.pool(network.stages(network.stem(torch.zeros(2, *CIFAR))))
    assert features.shape == (2, 64)  # 32 -> 16 -> 8 pixels, pooled


def test_zero_pad_shortcut_subsamples_and_pads_channels():
    x = torch.arange(2 * 16 * 4 * 4, dtype=torch.float32).view(2, 16, 4, 4)
    out = ZeroPadShortcut(16, 32, stride=2)(x)
    assert out.shape == (2, 32, 2, 2)
    assert torch.equal(out[:, 8:24], x[:, :, ::2, ::2])
    assert not out[:, :8].any() and not out[:, 24:].any()


def test_cosine_classifier_gives_cosines():
    torch.manual_seed(0)
    head = CosineClassifier(4, 3)
    x = torch.randn(5, 4)
    expected = torch.nn.functional.cosine_similarity(
        x.unsqueeze(1), head.weight.unsqueeze(0), dim=2
    )
    torch.testing.assert_close(head(x), expected)
    assert head(3.0 * x).allclose(head(x)) and head(x).abs().max() <= 1
