"""The optimised ``fmnist_cnn`` computes the eager network's function: same outputs, same
gradients, same weights after Adam steps (float32 and bf16 autocast, channels-last weights)."""

from __future__ import annotations

import copy
from contextlib import nullcontext

import pytest
import torch
from torch import nn

from imbloss.models import FashionMNISTCNN, use_preferred_layout
from imbloss.models.channels_last import Flatten, MaxPool2d

SHAPE = (1, 28, 28)


def eager_reference(net: FashionMNISTCNN) -> nn.Module:
    """A copy of ``net`` with PyTorch's own layers in the source's order:
    Conv-ReLU-Conv-ReLU-MaxPool-Flatten, as the network was before it was optimised."""
    reference = copy.deepcopy(net)
    first, _, second, *_ = reference.features
    reference.features = nn.Sequential(
        first, nn.ReLU(), second, nn.ReLU(), nn.MaxPool2d(2), nn.Flatten()
    )
    return reference


def autocast(precision: str):
    if precision == "bf16-mixed":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return nullcontext()


def outputs_and_grads(net: nn.Module, x: torch.Tensor, y: torch.Tensor, precision: str):
    net.zero_grad(set_to_none=True)
    torch.manual_seed(1)  # the same dropout mask
    with autocast(precision):
        logits = net(x)
    nn.functional.cross_entropy(logits.float(), y).backward()
    return logits.detach(), {name: p.grad.clone() for name, p in net.named_parameters()}


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_forward_and_gradients_match_the_eager_network(precision: str) -> None:
    torch.manual_seed(0)
    net = use_preferred_layout(FashionMNISTCNN(SHAPE, 10), torch.device("cpu"))
    reference = eager_reference(net)
    x, y = torch.randn(64, *SHAPE), torch.randint(10, (64,))
    # ties inside pooling windows: the first maximum gets the gradient in both
    x[:, :, 1::2] = x[:, :, ::2]
    logits, grads = outputs_and_grads(net, x, y, precision)
    ref_logits, ref_grads = outputs_and_grads(reference, x, y, precision)
    assert torch.equal(logits, ref_logits)
    assert grads.keys() == ref_grads.keys()
    for name, grad in grads.items():
        assert torch.equal(grad, ref_grads[name]), name


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_adam_steps_end_in_the_same_weights(precision: str) -> None:
    torch.manual_seed(0)
    net = use_preferred_layout(FashionMNISTCNN(SHAPE, 10), torch.device("cpu"))
    reference = eager_reference(net)
    x, y = torch.randn(32, *SHAPE), torch.randint(10, (32,))
    for model in (net, reference):
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        for _ in range(3):
            outputs_and_grads(model, x, y, precision)
            optimizer.step()
    for (name, p), q in zip(net.named_parameters(), reference.parameters(), strict=True):
        assert torch.equal(p, q), name


def test_layers_fall_back_outside_channels_last() -> None:
    """Default-layout inputs take PyTorch's own path; channels-last ones get PyTorch's gradient
    in their own layout."""
    x = torch.randn(2, 3, 6, 6, requires_grad=True)
    flat, pool = Flatten(), MaxPool2d(2)
    assert flat(x).grad_fn.name() == "ViewBackward0"
    assert pool(x).grad_fn.name() == "MaxPool2DWithIndicesBackward0"
    nn.Flatten()(nn.MaxPool2d(2)(x)).pow(2).sum().backward()
    channels_last = x.detach().contiguous(memory_format=torch.channels_last).requires_grad_()
    flat(pool(channels_last)).pow(2).sum().backward()
    assert channels_last.grad.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(channels_last.grad, x.grad)


def test_max_pool_keeps_pytorchs_backward_under_deterministic_algorithms() -> None:
    x = torch.randn(2, 3, 6, 6).contiguous(memory_format=torch.channels_last).requires_grad_()
    torch.use_deterministic_algorithms(True)
    try:
        pooled = MaxPool2d(2)(x)
    finally:
        torch.use_deterministic_algorithms(False)
    assert pooled.grad_fn.name() == "MaxPool2DWithIndicesBackward0"
