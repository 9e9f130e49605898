"""FiniteGuard.guarded_step: a non-finite loss never reaches the weights; on the CPU the
weights are copied only in a step after a failure."""

from __future__ import annotations

import pytest
import torch

from imbloss.finite import FiniteGuard


def _step(value: float, guard: FiniteGuard, batch: int = 0):
    param = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.SGD([param], lr=0.1)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = (param * value).sum()
        guard.observe(loss, epoch=0, batch=batch)
        loss.backward()
        return loss

    return param, optimizer, closure


@pytest.mark.parametrize("with_closure", [True, False])
def test_a_non_finite_loss_leaves_the_weights_and_later_steps_too(with_closure) -> None:
    guard = FiniteGuard()
    param, optimizer, closure = _step(2.0, guard)
    guard.guarded_step([param], lambda c: optimizer.step(c), closure)
    assert torch.allclose(param, torch.full((3,), 0.8))  # a finite loss trains
    for _ in range(2):

        def failing(p=param) -> torch.Tensor:
            optimizer.zero_grad()
            loss = (p * float("nan")).sum()
            guard.observe(loss, epoch=0, batch=1)
            loss.backward()
            return loss

        if with_closure:
            guard.guarded_step([param], lambda c: optimizer.step(c), failing)
        else:  # no closure: observed beforehand, the device path
            failing()
            guard.guarded_step([param], lambda c: optimizer.step(), None)
        assert torch.allclose(param, torch.full((3,), 0.8))
    assert guard.failures()[0].batch == 1


def test_finite_steps_on_the_cpu_copy_nothing(monkeypatch) -> None:
    guard = FiniteGuard()
    param, optimizer, closure = _step(1.0, guard)
    copies = []
    monkeypatch.setattr(guard, "snapshot", lambda params: copies.append(1) or [])
    for _ in range(3):
        guard.guarded_step([param], lambda c: optimizer.step(c), closure)
    assert copies == []
    assert torch.allclose(param, torch.full((3,), 0.7))
