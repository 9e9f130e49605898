"""Checks of configuration values that no constructor checks before the work starts."""

from __future__ import annotations

import math
from collections.abc import Callable

from omegaconf import DictConfig

from imbloss.errors import ConfigError
from imbloss.metrics import ShotThresholds
from imbloss.runs.folder import CHECKPOINT_POLICIES


def checked_number(
    key: str,
    value: object,
    *,
    accepted: str,
    valid: Callable[[float], bool],
    problem: str = "is invalid",
) -> float:
    """``value`` as a float if it is a finite real number (not a bool) satisfying ``valid``;
    otherwise a ConfigError ``"<key>=<value!r> <problem>; accepted: <accepted>"``."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if not (is_number and math.isfinite(value) and valid(float(value))):
        raise ConfigError(f"{key}={value!r} {problem}; accepted: {accepted}")
    return float(value)


# numpy's seeds: ``np.random.seed`` (which ``lightning.seed_everything`` sets) takes 0 .. 2**32 - 1
MAX_SEED = 2**32 - 1


def _is_count(value: object, least: int = 1) -> bool:
    """``value`` is an int (not a bool) >= ``least``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def check_count(key: str, value: object, least: int = 1) -> int:
    """``value`` as an int (not a bool) >= ``least``; otherwise a ConfigError naming ``key``."""
    if not _is_count(value, least):
        integer = isinstance(value, int) and not isinstance(value, bool)
        problem = "is out of range" if integer else "is not an integer"
        raise ConfigError(f"{key}={value!r} {problem}; accepted: an integer >= {least}")
    return value  # type: ignore[return-value]


def check_seed(key: str, value: object) -> int:
    """``value`` as a seed: an int (not a bool) in ``0 .. MAX_SEED``."""
    if not (_is_count(value, least=0) and value <= MAX_SEED):  # type: ignore[operator]
        raise ConfigError(
            f"{key}={value!r} is not a seed; accepted: an integer from 0 to {MAX_SEED}"
        )
    return value  # type: ignore[return-value]


def check_threads(value: object) -> int | None:
    """``threads`` as None (PyTorch's default) or an int >= 1."""
    if value is not None and not _is_count(value):
        raise ConfigError(
            f"threads={value!r} is not a thread count; accepted: an integer >= 1, or null"
        )
    return value  # type: ignore[return-value]


def run_epochs(cfg: DictConfig) -> int:
    """The epochs this run trains to: ``stop_at_epoch`` if set, else ``trainer.max_epochs``.

    ``stop_at_epoch`` must lie in ``1 .. trainer.max_epochs`` (a ConfigError names both)."""
    # an int >= 1: Lightning reads -1 as "train forever"
    max_epochs = check_count("trainer.max_epochs", cfg.trainer.get("max_epochs"))
    stop = cfg.get("stop_at_epoch")
    if stop is None:
        return max_epochs
    if not _is_count(stop) or stop > max_epochs:
        raise ConfigError(
            f"stop_at_epoch={stop!r} is out of range; accepted: an integer from 1 to "
            f"trainer.max_epochs={max_epochs}, or null"
        )
    return stop


def check_checkpoints(value: object) -> str:
    """``checkpoints`` as one of ``CHECKPOINT_POLICIES``."""
    if value not in CHECKPOINT_POLICIES:
        raise ConfigError(
            f"checkpoints={value!r} is not a checkpoint policy; accepted: "
            f"{', '.join(CHECKPOINT_POLICIES)}"
        )
    return str(value)


def check_run_config(cfg: DictConfig) -> None:
    """Every check of the run's own values that must pass before it loads data or builds a
    model (the objects Hydra builds check theirs: :mod:`imbloss.jobcheck`)."""
    check_seed("seed", cfg.get("seed"))
    run_epochs(cfg)
    check_threads(cfg.get("threads"))
    check_checkpoints(cfg.get("checkpoints", "best"))
    ShotThresholds.from_config(cfg.get("shots"))
