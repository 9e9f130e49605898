"""Numerics of every registered loss: gradients, extreme logits, absent classes, bf16 autocast."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from imbloss.losses import available_losses, build_loss, loss_spec

ALL_LOSSES = available_losses()
EPOCH_AFTER_DRW = 10_000  # wldam with its re-weighting switched on; no effect on the others


def built(name: str, class_counts: list[int]) -> nn.Module:
    loss_fn = build_loss(name, class_counts=class_counts)
    loss_fn.set_epoch(EPOCH_AFTER_DRW)
    return loss_fn


def loss_and_grad(loss_fn: nn.Module, logits: torch.Tensor, target: torch.Tensor):
    leaf = logits.detach().requires_grad_()
    value = loss_fn(leaf, target)
    value.backward()
    return value, leaf.grad


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_gradcheck_float64(name: str) -> None:
    """Analytic gradients equal finite differences; class 3 is absent from the batch."""
    logits = torch.randn(7, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    target = torch.tensor([0, 0, 1, 2, 0, 1, 0])
    loss_fn = built(name, [40, 12, 5, 3])
    assert torch.autograd.gradcheck(lambda z: loss_fn(z, target), (logits.requires_grad_(),))


def test_gradcheck_ldam_before_deferred_reweighting() -> None:
    logits = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    loss_fn = build_loss("wldam", class_counts=[30, 6, 2])  # epoch 0 < drw_epoch: unweighted
    target = torch.tensor([0, 1, 2, 0, 0])
    assert torch.autograd.gradcheck(lambda z: loss_fn(z, target), (logits.requires_grad_(),))


def test_pf_class_with_vanishing_probabilities_is_finite() -> None:
    """Label 0 with logits (-1e4, 1e4): log p = -2e4 exactly, so PF = -(1/2)(-2e4) = 1e4."""
    logits = torch.tensor([[-1e4, 1e4], [-1e4, 1e4]])
    target = torch.tensor([0, 0])
    for name in ("pf", "pfh"):
        value, grad = loss_and_grad(build_loss(name, [5, 5]), logits, target)
        assert value.item() == 1e4
        assert torch.isfinite(grad).all()
        assert grad[:, 0].lt(0).all()  # pushes the true-class logits up


@pytest.mark.parametrize("name", ALL_LOSSES)
@pytest.mark.parametrize("pattern", ["one_sample", "all_but_one_absent", "saturated_correct"])
def test_edge_batches_are_finite(name: str, pattern: str) -> None:
    num_classes = 5
    if pattern == "one_sample":
        logits, target = torch.tensor([[1e4, -1e4, 0.0, 3.0, -2.0]]), torch.tensor([1])
    elif pattern == "all_but_one_absent":
        logits = torch.tensor([[-1e4, 1e4, -1e4, 1e4, 0.0]] * 6)
        target = torch.full((6,), 2)
    else:  # every sample's true class wins by 2e4: p = 1 exactly in float32
        target = torch.arange(8) % num_classes
        logits = torch.full((8, num_classes), -1e4).scatter(1, target.unsqueeze(1), 1e4)
    value, grad = loss_and_grad(built(name, [100, 30, 10, 3, 1]), logits, target)
    assert torch.isfinite(value) and torch.isfinite(grad).all()


@pytest.mark.parametrize("gamma", [0.1, 0.5])
def test_focal_gamma_below_one_near_certain_samples(gamma: float) -> None:
    """(1 - p)^gamma has an infinite slope at p = 1; the gradient must stay finite."""
    logits = torch.tensor([[1e4, -1e4], [20.0, 0.0], [95.0, 0.0], [0.0, 1.0]])
    target = torch.tensor([0, 0, 0, 1])
    for name in ("focal", "focal_alpha"):
        loss_fn = build_loss(name, [3, 1], gamma=gamma)
        value, grad = loss_and_grad(loss_fn, logits, target)
        assert torch.isfinite(value) and torch.isfinite(grad).all()


@st.composite
def imbalanced_batches(draw: st.DrawFn) -> tuple[list[int], torch.Tensor, torch.Tensor]:
    """Random C, N, class counts, labels (sometimes a single class) and logits up to +-1e4."""
    num_classes = draw(st.integers(2, 8))
    batch_size = draw(st.integers(1, 16))
    counts = draw(st.lists(st.integers(1, 5000), min_size=num_classes, max_size=num_classes))
    label = st.integers(0, num_classes - 1)
    if draw(st.booleans()):
        target = [draw(label)] * batch_size
    else:
        target = draw(st.lists(label, min_size=batch_size, max_size=batch_size))
    magnitude = draw(st.sampled_from([1.0, 30.0, 1e3, 1e4]))
    entries = st.floats(-magnitude, magnitude, allow_nan=False, width=32)
    flat = draw(
        st.lists(entries, min_size=batch_size * num_classes, max_size=batch_size * num_classes)
    )
    logits = torch.tensor(flat, dtype=torch.float32).reshape(batch_size, num_classes)
    return counts, logits, torch.tensor(target, dtype=torch.int64)


@settings(max_examples=60, deadline=None)
@given(batch=imbalanced_batches(), data=st.data())
def test_every_loss_is_finite_with_finite_gradients(
    batch: tuple[list[int], torch.Tensor, torch.Tensor], data: st.DataObject
) -> None:
    """Every loss, with hyperparameters drawn from its tuning grid (defaults for the rest)."""
    counts, logits, target = batch
    for name in ALL_LOSSES:
        grid = loss_spec(name).grid
        hparams = {h: data.draw(st.sampled_from(values), label=h) for h, values in grid.items()}
        loss_fn = build_loss(name, class_counts=counts, **hparams)
        loss_fn.set_epoch(EPOCH_AFTER_DRW)
        value, grad = loss_and_grad(loss_fn, logits, target)
        assert value.dtype == torch.float32, name
        assert torch.isfinite(value), (name, value)
        assert torch.isfinite(grad).all(), name


@pytest.mark.parametrize("name", ALL_LOSSES)
@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_bf16_autocast_on_cpu(name: str, scale: float) -> None:
    """Logits from a linear layer under CPU bf16 autocast (bf16 tensors, up to +-1e4)."""
    generator = torch.Generator().manual_seed(7)
    layer = nn.Linear(6, 4)
    inputs = torch.randn(10, 6, generator=generator) * scale
    target = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 2, 0])  # class 3 absent
    loss_fn = built(name, [60, 20, 6, 2])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = layer(inputs)
        value = loss_fn(logits, target)
    assert logits.dtype == torch.bfloat16
    assert value.dtype == torch.float32
    value.backward()
    assert torch.isfinite(value)
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters())
