"""Tuning grids as Hydra sweeps: OmegaConf resolvers that read each loss's declared grid.

The first source (Du et al. 2021, Sec. IV-B/C) tunes WCE's minority weight over 19 values, the focal
loss's gamma over 7, FL(alpha) over both (19 x 7 = 133 runs) and the LDAM margin C over 10; the
grids live next to the losses' code (:func:`imbloss.losses.loss_spec`) and this module turns one
of them into the comma-separated value list that Hydra's basic sweeper expands::

    hydra.sweeper.params:
      loss.scale: ${loss_grid:wce,scale,${sweep.limit}}   # -> "0.1,0.2,...,1.0,2.0,...,10.0"

``limit`` (null: the whole grid) keeps the first ``limit`` values, e.g. to cut a sweep for a test.
The schedule resolver ``${epoch_at:FRACTION,MAX_EPOCHS}`` places epoch-dependent loss behaviour
(deferred re-weighting) at a share of the training schedule; ``${cosine_classifier:LOSS}`` is
whether LOSS's reference code trains it on a cosine classifier (the long-tail presets set
``model.cosine_classifier`` with it).
:func:`register_resolvers` must run before Hydra composes the configuration (``train.py`` calls it).
"""

from __future__ import annotations

from omegaconf import OmegaConf

from imbloss.errors import ConfigError
from imbloss.losses import loss_spec
from imbloss.multirun.devices import (
    JOB_DEVICES_RESOLVER,
    JOB_THREADS_RESOLVER,
    job_devices,
    job_threads,
)
from imbloss.schedule import epoch_at

LOSS_GRID_RESOLVER = "loss_grid"
EPOCH_AT_RESOLVER = "epoch_at"
COSINE_CLASSIFIER_RESOLVER = "cosine_classifier"


def format_grid_value(value: float) -> str:
    """A grid value as Hydra reads it back as the same float: ``1.0`` not ``1``, no float noise."""
    text = f"{value:.10g}"
    if not any(mark in text for mark in (".", "e", "n")):  # "n": inf / nan
        text += ".0"
    return text


def grid_values(loss: str, hparam: str, limit: int | None = None) -> tuple[float, ...]:
    """The declared grid of ``hparam`` for ``loss``, cut to its first ``limit`` values if given."""
    grid = loss_spec(loss).grid
    if hparam not in grid:
        accepted = ", ".join(sorted(grid)) or "none (the loss declares no grid)"
        raise ConfigError(f"loss {loss!r} has no tuning grid for {hparam!r}; accepted: {accepted}")
    values = grid[hparam]
    if limit is None:
        return values
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ConfigError(
            f"sweep.limit={limit!r} is not a grid size; accepted: an integer >= 1, or null"
        )
    return values[:limit]


def loss_grid(loss: str, hparam: str, limit: int | None = None) -> str:
    """Resolver ``${loss_grid:LOSS,HPARAM[,LIMIT]}``: the grid as Hydra sweep syntax ``a,b,c``."""
    return ",".join(format_grid_value(v) for v in grid_values(loss, hparam, limit))


def cosine_classifier(loss: str) -> bool:
    """Resolver ``${cosine_classifier:LOSS}``: LOSS's declared ``cosine_classifier``."""
    return loss_spec(loss).cosine_classifier


def register_resolvers() -> None:
    """Register the config resolvers with OmegaConf (idempotent: a second call replaces them)."""
    OmegaConf.register_new_resolver(LOSS_GRID_RESOLVER, loss_grid, replace=True)
    OmegaConf.register_new_resolver(EPOCH_AT_RESOLVER, epoch_at, replace=True)
    OmegaConf.register_new_resolver(COSINE_CLASSIFIER_RESOLVER, cosine_classifier, replace=True)
    OmegaConf.register_new_resolver(JOB_DEVICES_RESOLVER, job_devices, replace=True)
    OmegaConf.register_new_resolver(JOB_THREADS_RESOLVER, job_threads, replace=True)
