"""The NaN guard of both training engines, kept on the device (no host read inside a step).

A :class:`FiniteGuard` follows K members (K = 1 for an ordinary run; the guard's tensors then
have shape ``[]``, otherwise ``[K]``):

- ``observe(losses, epoch, batch)`` after each forward pass: ``ok_k ← ok_k ∧ isfinite(loss_k)``,
  and the first non-finite loss of each member is remembered with its epoch and batch;
- ``keep_finite(params, before)`` after the optimiser step puts back, for every member whose
  ``ok_k`` is false, the parameters it had before the step: ``p ← where(ok, p, p_before)``
  (the parameters of member k are ``p[k]`` for stacked tensors [K, ...]);
- ``failures()`` reads the flags on the host, once per epoch;
- ``guarded_step(params, step, closure)`` runs one optimiser step (whose closure computes and
  observes the loss) with that guarantee. Off the CPU it copies the parameters before every step
  and puts them back on the device (``keep_finite``, no host read). On the CPU a host read costs
  nothing, so the flags are read after the closure, before the optimiser updates anything: the
  parameters are copied, and put back, only in a step where some member has failed (measured
  2026-12-03: the copies and ``where`` of every step were 2.4 % of a bf16 ``fmnist_cnn`` epoch).

Guarantee: an update computed from a non-finite loss never reaches a member's parameters, and a
failed member's parameters stay those before its first non-finite loss (its optimiser state and
BatchNorm statistics are not restored: the member is failed and not trained further). The failure
is reported at the next check (the end of the epoch), not at the step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class NonFiniteRecord:
    """Where a member's training loss first became non-finite."""

    value: float
    epoch: int
    batch: int

    def message(self) -> str:
        return (
            f"training loss is {self.value} at epoch {self.epoch}, batch {self.batch}; the "
            "update it produced was discarded and training stopped (lower the learning rate or "
            "check the inputs)"
        )


class FiniteGuard:
    """Device-side record of which members' training losses have all been finite."""

    def __init__(self, shape: Sequence[int] = ()) -> None:
        self.shape = tuple(shape)
        self.ok: Tensor | None = None
        self._first: Tensor | None = None  # [*shape, 3]: value, epoch, batch of the first failure

    def observe(self, losses: Tensor, epoch: int, batch: int) -> None:
        """Record the members whose loss (shape ``[]`` or ``[K]``) is NaN or infinite."""
        losses = losses.detach()
        if self.ok is None:
            self.ok = torch.ones(self.shape, dtype=torch.bool, device=losses.device)
            self._first = torch.zeros((*self.shape, 3), dtype=torch.float64, device=losses.device)
        finite = torch.isfinite(losses)
        newly_failed = (self.ok & ~finite).unsqueeze(-1)
        where = torch.stack(
            [
                losses.double(),
                torch.full_like(losses, epoch).double(),
                torch.full_like(losses, batch).double(),
            ],
            dim=-1,
        )
        self._first = torch.where(newly_failed, where, self._first)
        self.ok &= finite

    def state_dict(self) -> dict[str, Tensor | None]:
        """The flags and first failures (None before the first observed loss)."""
        return {"ok": self.ok, "first": self._first}

    def load_state_dict(self, state: dict[str, Tensor | None], device: torch.device) -> None:
        """Put back :meth:`state_dict`, on ``device``."""
        ok, first = state["ok"], state["first"]
        self.ok = None if ok is None else ok.to(device)
        self._first = None if first is None else first.to(device)

    @staticmethod
    def snapshot(params: Iterable[Tensor]) -> list[Tensor]:
        """Copies of the parameters before an optimiser step."""
        return [p.detach().clone() for p in params]

    @torch.no_grad()
    def keep_finite(self, params: Iterable[Tensor], before: Sequence[Tensor]) -> None:
        """Put back ``before`` in the members that are no longer ``ok`` (no host read)."""
        if self.ok is None:
            return
        for param, old in zip(params, before, strict=True):
            mask = self.ok.view(*self.shape, *([1] * (param.ndim - len(self.shape))))
            param.copy_(torch.where(mask, param, old))

    def all_ok(self) -> bool:
        """Whether every member's losses have been finite so far (reads the device)."""
        return self.ok is None or bool(self.ok.all())

    def guarded_step(
        self,
        params: Sequence[Tensor],
        step: Callable[[Callable[[], object] | None], object],
        closure: Callable[[], object] | None,
    ) -> None:
        """``step(closure)``, an optimiser step whose ``closure`` (forward, loss, ``observe``,
        backward) runs before the update, with the parameters of failed members put back (see
        the module docstring: on the CPU they are copied only when a member has failed)."""
        if closure is None or not params or params[0].device.type != "cpu":
            before = self.snapshot(params)
            step(closure)
            self.keep_finite(params, before)
            return
        taken: list[list[Tensor]] = []

        def observed_closure() -> object:
            result = closure()
            if not taken and not self.all_ok():  # the first call comes before any update
                taken.append(self.snapshot(params))
            return result

        step(observed_closure)
        if taken:
            self.keep_finite(params, taken[0])

    def failures(self) -> dict[int, NonFiniteRecord]:
        """Members (index; 0 for an ordinary run) that saw a non-finite loss. Reads the device."""
        if self.ok is None:
            return {}
        ok = self.ok.reshape(-1).cpu()
        first = self._first.reshape(-1, 3).cpu()
        return {
            k: NonFiniteRecord(float(first[k, 0]), int(first[k, 1]), int(first[k, 2]))
            for k in range(len(ok))
            if not ok[k]
        }
