"""Learning-rate schedules per epoch: the config group ``scheduler`` (``none`` by default).

A schedule gives the learning rate of every 0-based epoch e as a factor of the optimiser's own
``lr``: ``lr_e = lr · factor(e)``, constant within an epoch. The single engine hands it to
Lightning as a ``LambdaLR`` stepped once per epoch (:meth:`LRSchedule.scheduler`; its state is
saved in and restored from ``last.ckpt``), the stacked engine sets the same rates itself at the
start of every epoch (:func:`set_epoch_lr`); both log the epoch's rate as ``lr``.

- :class:`WarmupMultiStep`: linear warm-up, then step decay. ``factor(e) = (e + 1) / W`` for
  ``e < W`` (W = ``warmup_epochs``), then ``gamma^k`` with k the number of ``milestones`` <= e.
  LDAM-DRW's CIFAR schedule (Cao et al. 2019, Sec. 4.1 and its code kaidic/LDAM-DRW) is W = 5,
  milestones 160 and 180, gamma 0.01: lr 0.1 gives 0.02, 0.04, 0.06, 0.08 in epochs 0-3, 0.1
  from epoch 4, 0.001 from epoch 160, 0.00001 from epoch 180.
- :class:`WarmupCosine`: the same warm-up, then cosine annealing (Loshchilov & Hutter 2017,
  without restarts) from 1 to ``min_factor`` over the remaining epochs:
  ``factor(e) = m + (1 - m) · (1 + cos(π (e - W) / (T - W))) / 2`` for ``W <= e < T``,
  T = ``total_epochs``, m = ``min_factor``.
"""

from __future__ import annotations

import itertools
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch
from torch.optim.lr_scheduler import LambdaLR

from imbloss.checks import checked_number
from imbloss.errors import ConfigError


def _whole(key: str, value: object, least: int = 0) -> int:
    """``value`` as an int >= ``least`` (not a bool); else ConfigError naming ``key``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ConfigError(
            f"scheduler.{key}={value!r} is out of range; accepted: an integer >= {least}"
        )
    return value


class LRSchedule(ABC):
    """The factor on the optimiser's learning rate in each 0-based epoch, with linear warm-up
    over the first ``warmup_epochs`` (``(e + 1) / W``; none for 0)."""

    def __init__(self, warmup_epochs: int = 0) -> None:
        self.warmup_epochs = _whole("warmup_epochs", warmup_epochs)

    def factor(self, epoch: int) -> float:
        """``lr_e / lr`` for the 0-based ``epoch``."""
        if epoch < self.warmup_epochs:
            return (epoch + 1) / self.warmup_epochs
        return self.after_warmup(epoch)

    @abstractmethod
    def after_warmup(self, epoch: int) -> float:
        """The factor of an epoch after the warm-up."""

    def __call__(self, epoch: int) -> float:
        """``LambdaLR``'s ``lr_lambda``."""
        return self.factor(epoch)

    def scheduler(self, optimizer: torch.optim.Optimizer) -> LambdaLR:
        """A ``LambdaLR`` of this schedule, to be stepped once at the end of every epoch. Its
        ``state_dict`` holds the epoch count and this object's attributes (plain numbers)."""
        return LambdaLR(optimizer, self)


class WarmupMultiStep(LRSchedule):
    """Warm-up, then ``gamma^k``, k the number of ``milestones`` (0-based epochs) reached."""

    def __init__(
        self, warmup_epochs: int = 0, milestones: Sequence[int] = (), gamma: float = 0.1
    ) -> None:
        super().__init__(warmup_epochs)
        if isinstance(milestones, str) or not isinstance(milestones, Sequence):
            raise ConfigError(
                f"scheduler.milestones={milestones!r} is not a list; accepted: a list of epochs"
            )
        steps = [_whole("milestones[]", m, least=self.warmup_epochs) for m in milestones]
        if any(b <= a for a, b in itertools.pairwise(steps)):
            raise ConfigError(
                f"scheduler.milestones={list(milestones)} is invalid; accepted: increasing "
                f"epochs >= scheduler.warmup_epochs={self.warmup_epochs}"
            )
        self.milestones = tuple(steps)
        self.gamma = checked_number(
            "scheduler.gamma", gamma, accepted="a number > 0", valid=lambda v: v > 0
        )

    def after_warmup(self, epoch: int) -> float:
        return self.gamma ** sum(epoch >= m for m in self.milestones)


class WarmupCosine(LRSchedule):
    """Warm-up, then cosine annealing from 1 to ``min_factor`` by epoch ``total_epochs``."""

    def __init__(self, total_epochs: int, warmup_epochs: int = 0, min_factor: float = 0.0) -> None:
        super().__init__(warmup_epochs)
        self.total_epochs = _whole("total_epochs", total_epochs, least=self.warmup_epochs + 1)
        self.min_factor = checked_number(
            "scheduler.min_factor",
            min_factor,
            accepted="a number in [0, 1]",
            valid=lambda v: 0 <= v <= 1,
        )

    def after_warmup(self, epoch: int) -> float:
        progress = (epoch - self.warmup_epochs) / (self.total_epochs - self.warmup_epochs)
        cosine = (1 + math.cos(math.pi * min(progress, 1.0))) / 2
        return self.min_factor + (1 - self.min_factor) * cosine


def set_epoch_lr(
    optimizer: torch.optim.Optimizer,
    base_lrs: Sequence[float],
    schedule: LRSchedule | None,
    epoch: int,
) -> float:
    """Give every parameter group of ``optimizer`` its rate of ``epoch`` (``base_lrs``: the
    groups' rates as built; ``None``: no schedule, the rates stay those); returns the first
    group's. The same products ``base · factor(e)`` as ``LambdaLR``'s."""
    for group, base in zip(optimizer.param_groups, base_lrs, strict=True):
        group["lr"] = base if schedule is None else base * schedule.factor(epoch)
    return float(optimizer.param_groups[0]["lr"])
