"""Class-aware training samplers: the samples each epoch visits (config group ``sampler``).

Every sampler draws *positions* into the training split (no image is copied) from the training
seed and the epoch alone (:func:`imbloss.data.batches.epoch_generator`), and every epoch has the
same length ``num_samples``. With ``N_j`` the training count of class j and ``C`` the number of
classes present (``N_j > 0``):

- ``none``: every sample once per epoch, shuffled (``num_samples = sum_j N_j``).
- ``oversample``: every class raised to ``max_j N_j`` per epoch: each of its samples
  ``floor(max / N_j)`` times, plus ``max mod N_j`` of them drawn without replacement
  (``num_samples = C * max_j N_j``).
- ``undersample``: every class cut to ``min_j N_j`` per epoch, a new draw without replacement each
  epoch (``num_samples = C * min_j N_j``).
- ``class_balanced``: each of the ``sum_j N_j`` draws picks class j with probability
  ``p_j = N_j^q / sum_k N_k^q``, then one of its samples uniformly (Kang et al. 2020): ``q = 0``
  class-balanced, ``q = 0.5`` square-root, ``q = 1`` instance sampling with replacement.
- ``drs``: deferred re-sampling (Cao et al. 2019, LDAM-DRW): ``none`` before the 0-based epoch
  ``floor(start * max_epochs)``, ``class_balanced`` with exponent ``q`` from then on.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import torch

from imbloss.checks import checked_number
from imbloss.data.batches import EpochSampler, ShuffleSampler, epoch_generator
from imbloss.errors import ConfigError
from imbloss.registry import Registry
from imbloss.schedule import epoch_at

SamplerFactory = Callable[..., EpochSampler]
# two classes of 2 and 1 samples: what check_sampler builds a sampler over
PLACEHOLDER_TARGETS = torch.tensor([0, 0, 1])
_SAMPLERS: Registry[SamplerFactory] = Registry("sampler")


def register_sampler(name: str) -> Callable[[SamplerFactory], SamplerFactory]:
    """Register a factory ``(targets, num_classes, seed, **options) -> EpochSampler``."""

    def decorator(factory: SamplerFactory) -> SamplerFactory:
        _SAMPLERS.add(name, factory)
        return factory

    return decorator


def available_samplers() -> list[str]:
    """The registered sampler names, sorted."""
    return _SAMPLERS.names()


def sampler_options(name: str) -> tuple[str, ...]:
    """The keyword options the sampler ``name`` accepts (ConfigError for an unknown name)."""
    params = inspect.signature(_SAMPLERS.get(name)).parameters
    return tuple(p for p in params if p not in ("targets", "num_classes", "seed"))


def check_sampler(name: str, options: Mapping[str, Any]) -> None:
    """ConfigError for an unknown sampler name or option, naming the accepted ones, or for a
    value the sampler refuses (it is built over ``PLACEHOLDER_TARGETS``, before any data)."""
    build_sampler(name, PLACEHOLDER_TARGETS, 2, 0, **options)


def build_sampler(
    name: str, targets: torch.Tensor, num_classes: int, seed: int, **options: Any
) -> EpochSampler:
    """The sampler ``name`` over a training split with labels ``targets`` and training ``seed``."""
    accepted = sampler_options(name)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(
            f"sampler {name!r} got unknown option(s) {', '.join(unknown)}; "
            f"accepted: {', '.join(accepted) or 'none'}"
        )
    return _SAMPLERS.get(name)(targets.cpu(), num_classes, seed, **options)


class ClassSampler(EpochSampler):
    """A sampler that knows each class's positions: ``positions[offsets[j] : offsets[j + 1]]``."""

    def __init__(self, targets: torch.Tensor, num_classes: int, seed: int) -> None:
        self.seed = int(seed)
        self.counts = torch.bincount(targets, minlength=num_classes)
        self.positions = torch.argsort(targets, stable=True)
        self.offsets = torch.cat([torch.zeros(1, dtype=torch.long), self.counts.cumsum(0)])
        self.present = [j for j in range(num_classes) if self.counts[j] > 0]

    def class_positions(self, j: int) -> torch.Tensor:
        return self.positions[self.offsets[j] : self.offsets[j + 1]]

    def _shuffled(self, chosen: list[torch.Tensor], generator: torch.Generator) -> torch.Tensor:
        order = torch.cat(chosen)
        return order[torch.randperm(len(order), generator=generator)]


@register_sampler("none")
def shuffle_sampler(targets: torch.Tensor, num_classes: int, seed: int) -> EpochSampler:
    """Today's batches: every sample once per epoch in a fresh permutation."""
    return ShuffleSampler(len(targets), seed)


@register_sampler("oversample")
class OversampleSampler(ClassSampler):
    """Every class to the largest class count per epoch (``num_samples = C * max_j N_j``)."""

    def __init__(self, targets: torch.Tensor, num_classes: int, seed: int) -> None:
        super().__init__(targets, num_classes, seed)
        self.per_class = int(self.counts.max())
        self.num_samples = len(self.present) * self.per_class

    def epoch_indices(self, epoch: int) -> torch.Tensor:
        generator = epoch_generator(self.seed, epoch)
        chosen = []
        for j in self.present:
            own = self.class_positions(j)
            repeats, extra = divmod(self.per_class, len(own))
            chosen += [
                own.repeat(repeats),
                own[torch.randperm(len(own), generator=generator)[:extra]],
            ]
        return self._shuffled(chosen, generator)


@register_sampler("undersample")
class UndersampleSampler(ClassSampler):
    """Every class to the smallest class count, a new draw each epoch (``C * min_j N_j``)."""

    def __init__(self, targets: torch.Tensor, num_classes: int, seed: int) -> None:
        super().__init__(targets, num_classes, seed)
        self.per_class = int(self.counts[self.present].min())
        self.num_samples = len(self.present) * self.per_class

    def epoch_indices(self, epoch: int) -> torch.Tensor:
        generator = epoch_generator(self.seed, epoch)
        chosen = []
        for j in self.present:
            own = self.class_positions(j)
            chosen.append(own[torch.randperm(len(own), generator=generator)[: self.per_class]])
        return self._shuffled(chosen, generator)


@register_sampler("class_balanced")
class ClassBalancedSampler(ClassSampler):
    """``sum_j N_j`` draws: class j with ``p_j = N_j^q / sum_k N_k^q``, then a uniform sample."""

    def __init__(self, targets: torch.Tensor, num_classes: int, seed: int, q: float = 0.0) -> None:
        super().__init__(targets, num_classes, seed)
        self.q = checked_number("sampler.q", q, accepted="a number >= 0", valid=lambda v: v >= 0)
        self.num_samples = len(targets)
        weights = torch.where(self.counts > 0, self.counts.double().pow(self.q), 0.0)
        self.class_probs = weights / weights.sum()

    def epoch_indices(self, epoch: int) -> torch.Tensor:
        generator = epoch_generator(self.seed, epoch)
        classes = torch.multinomial(
            self.class_probs, self.num_samples, replacement=True, generator=generator
        )
        within = torch.rand(self.num_samples, generator=generator, dtype=torch.float64)
        offsets = (within * self.counts[classes]).long()
        return self.positions[self.offsets[classes] + offsets]


@register_sampler("drs")
class DeferredResampler(EpochSampler):
    """``none`` before epoch ``floor(start * max_epochs)``, ``class_balanced(q)`` from then on."""

    def __init__(
        self,
        targets: torch.Tensor,
        num_classes: int,
        seed: int,
        start: float = 0.8,
        max_epochs: int = 200,
        q: float = 0.0,
    ) -> None:
        start = checked_number(
            "sampler.start", start, accepted="a number in [0, 1]", valid=lambda v: 0 <= v <= 1
        )
        max_epochs = int(
            checked_number(
                "sampler.max_epochs", max_epochs, accepted="an integer >= 1", valid=lambda v: v >= 1
            )
        )
        self.switch_epoch = epoch_at(start, max_epochs)
        self.before = ShuffleSampler(len(targets), seed)
        self.after = ClassBalancedSampler(targets, num_classes, seed, q)
        self.num_samples = len(targets)

    def epoch_indices(self, epoch: int) -> torch.Tensor:
        phase = self.before if epoch < self.switch_epoch else self.after
        return phase.epoch_indices(epoch)
