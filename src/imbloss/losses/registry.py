"""The loss registry: each loss registers itself under its config name (``conf/loss/<name>.yaml``).

A loss is an ``nn.Module`` whose constructor takes the training-set ``class_counts`` first and its
hyperparameters as keywords, and whose ``forward(logits [N, C] float, target [N] int64)`` returns a
scalar. Next to its code each loss declares its display label and its position in the report's
tables, whether it is parameter-free and, for each tunable hyperparameter, the search grid of the
first source (Du et al. 2021, Sec. IV-B), so that sweeps and reports read them from one place; and
whether its reference implementation trains it on a cosine classifier (``cosine_classifier``: LDAM
in LDAM-DRW's code), which the long-tail presets follow.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from torch import nn

from imbloss.errors import ConfigError
from imbloss.registry import Registry


@dataclass(frozen=True)
class LossSpec:
    """What the registry knows of one loss."""

    name: str
    cls: type[nn.Module]
    label: str  # how tables and plots name it (the sources' names: "PF-loss", "FL(α)")
    order: int  # its row in the report's tables: the first source's, the second's, the others
    parameter_free: bool
    grid: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    source: str = ""
    cosine_classifier: bool = False  # its reference code trains it on cosine logits

    @property
    def hparams(self) -> tuple[str, ...]:
        """Keyword hyperparameters accepted by the constructor (besides ``class_counts``)."""
        params = inspect.signature(self.cls.__init__).parameters
        return tuple(p for p in params if p not in ("self", "class_counts"))

    @property
    def grid_size(self) -> int:
        """Number of training runs the paper's grid needs (1 for a loss without a grid)."""
        size = 1
        for values in self.grid.values():
            size *= len(values)
        return size


_LOSSES: Registry[LossSpec] = Registry("loss")


def register_loss(
    name: str,
    *,
    label: str,
    order: int,
    parameter_free: bool,
    grid: Mapping[str, Sequence[float]] | None = None,
    source: str = "",
    cosine_classifier: bool = False,
) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator registering a loss under ``name`` with its label, order and tuning grid
    (and whether its reference code trains it on a cosine classifier)."""

    def decorator(cls: type[nn.Module]) -> type[nn.Module]:
        frozen_grid = {k: tuple(float(v) for v in values) for k, values in (grid or {}).items()}
        if parameter_free and frozen_grid:
            raise ValueError(f"loss {name!r} is declared parameter-free but has a grid")
        spec = LossSpec(
            name, cls, label, order, parameter_free, frozen_grid, source, cosine_classifier
        )
        unknown = set(frozen_grid) - set(spec.hparams)
        if unknown:
            raise ValueError(f"loss {name!r} declares a grid for unknown hyperparameters {unknown}")
        _LOSSES.add(name, spec)
        return cls

    return decorator


def available_losses() -> list[str]:
    """Registered loss names, sorted."""
    return _LOSSES.names()


def loss_spec(name: str) -> LossSpec:
    """The spec of a registered loss; a clear error naming the accepted names otherwise."""
    return _LOSSES.get(name)


def build_loss(name: str, class_counts: Sequence[int], **hparams: float) -> nn.Module:
    """Instantiate the loss ``name`` for a training set with ``class_counts`` samples per class."""
    spec = loss_spec(name)
    unknown = sorted(set(hparams) - set(spec.hparams))
    if unknown:
        accepted = ", ".join(spec.hparams) or "none"
        raise ConfigError(
            f"loss {name!r} got unknown hyperparameter(s) {', '.join(unknown)}; "
            f"accepted: {accepted}"
        )
    counts = [int(c) for c in class_counts]
    if len(counts) < 2 or min(counts) < 1:
        raise ConfigError(
            f"class_counts must list at least two classes with >= 1 sample each, got {counts}"
        )
    return spec.cls(counts, **hparams)
