"""Successive halving over a tuning grid: its rungs, which points each rung keeps, its record.

Successive halving (Jamieson and Talwalkar 2016) trains every point of a grid briefly and
continues only the best share of them. Here, with ``eta`` (η), ``min_epochs`` (m) and
``max_epochs`` (M):

- rung ``k`` trains its points to ``min(m * η**k, M)`` epochs; the last rung is the first that
  reaches M (:func:`rung_epochs`; m=2, M=60, η=3: 2, 6, 18, 54, 60);
- rung 0 holds every point; rung ``k + 1`` the best ``max(1, n // η)`` of the ``n`` points of
  rung ``k`` *of each setting* — the points that share every override but the hyperparameters
  (loss, ``ir``, ``seed``, ...) are ranked among themselves (:func:`kept_count`,
  :func:`keep_best`);
- a point's score is its ``metrics.json`` figure ``metric`` (``val_gmean``: the validation
  G-mean of the weights selected so far); ties as in the report (:mod:`imbloss.report.selection`):
  the higher other validation figure, then the first folder. A failed point has no score and is
  never kept.

Every point is configured for the whole schedule (``trainer.max_epochs`` = M); a rung sets
``stop_at_epoch`` only, so a point continues from its own ``checkpoints/last.ckpt`` and ends as
the run trained to its last rung in one go. :class:`HalvingRecord` (``halving.json`` in the sweep
folder) keeps the points and each finished rung's scores and choices, so that a re-run keeps the
rungs it finished and the report can judge each rung's choice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from imbloss.errors import ConfigError
from imbloss.runs.outputs import write_json
from imbloss.runs.readers import read_json_file

RECORD_FILE = "halving.json"
# The validation figures a rung may rank on; each breaks the other's ties.
METRICS = ("val_gmean", "val_auc")
# Swept keys under this prefix are the hyperparameters; every other swept key is a setting.
HPARAM_PREFIX = "loss."


def check_halving(eta: object, min_epochs: object, max_epochs: object, metric: object) -> None:
    """ConfigError naming the first bad value of the sweeper's settings and what is accepted."""

    def is_count(value: object, least: int) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= least

    if not is_count(eta, 2):
        raise ConfigError(f"hydra.sweeper.eta={eta!r} is out of range; accepted: an integer >= 2")
    if not is_count(max_epochs, 1):
        raise ConfigError(
            f"hydra.sweeper.max_epochs={max_epochs!r} is out of range; accepted: an integer >= 1 "
            "(null: trainer.max_epochs)"
        )
    if not is_count(min_epochs, 1) or min_epochs > max_epochs:  # type: ignore[operator]
        raise ConfigError(
            f"hydra.sweeper.min_epochs={min_epochs!r} is out of range; accepted: an integer from "
            f"1 to max_epochs={max_epochs}"
        )
    if metric not in METRICS:
        raise ConfigError(
            f"hydra.sweeper.metric={metric!r} is unknown; accepted: {', '.join(METRICS)}"
        )


def rung_epochs(min_epochs: int, max_epochs: int, eta: int) -> list[int]:
    """The epochs each rung trains its points to: ``min_epochs * eta**k`` below ``max_epochs``,
    then ``max_epochs``."""
    epochs, current = [], min_epochs
    while current < max_epochs:
        epochs.append(current)
        current *= eta
    return [*epochs, max_epochs]


def kept_count(points: int, eta: int) -> int:
    """How many of a setting's ``points`` the next rung continues: the best 1/η, at least one."""
    return max(1, points // eta)


@dataclass(frozen=True)
class Point:
    """One grid point: its folder name in the sweep folder, its overrides, and the overrides
    that make its setting (every one but the hyperparameters')."""

    folder: str
    overrides: tuple[str, ...]
    setting: tuple[str, ...]


def make_points(
    jobs: Sequence[Sequence[str]], folders: Sequence[str], hparam_keys: Sequence[str]
) -> list[Point]:
    """The grid's points from the sweep's jobs (each its ``key=value`` overrides) and their
    folder names; ``hparam_keys`` are the hyperparameter keys (the rest make the setting)."""
    points = []
    for overrides, folder in zip(jobs, folders, strict=True):
        setting = tuple(o for o in overrides if _key(o) not in hparam_keys)
        points.append(Point(folder, tuple(overrides), setting))
    return points


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def hyperparameter_keys(swept: Sequence[str]) -> list[str]:
    """The swept keys that are hyperparameters (under ``loss.``); a ConfigError if none is."""
    keys = [key for key in swept if key.startswith(HPARAM_PREFIX)]
    if not keys:
        shown = ", ".join(swept) or "none"
        raise ConfigError(
            f"hydra/sweeper=halving needs a hyperparameter axis to halve, a swept key under "
            f"{HPARAM_PREFIX!r} (e.g. sweep=wce, or loss.gamma=0.5,1,2); swept keys: {shown}"
        )
    return keys


def _rank_key(score: Mapping[str, float | None], metric: str, folder: str) -> tuple:
    """Sort key, best first: the metric, then the other validation figure, then the folder."""
    other = next(m for m in METRICS if m != metric)

    def descending(value: float | None) -> float:
        return math.inf if value is None or math.isnan(value) else -value

    return (descending(score.get(metric)), descending(score.get(other)), folder)


def ranked_by_setting(
    points: Sequence[Point],
    scores: Mapping[str, Mapping[str, float | None] | None],
    metric: str,
) -> dict[tuple[str, ...], tuple[int, list[Point]]]:
    """Per setting: its number of points, and those with a score (``scores[folder]``: the
    point's validation figures, None for a failed point), best first."""
    by_setting: dict[tuple[str, ...], list[Point]] = {}
    for point in points:
        by_setting.setdefault(point.setting, []).append(point)
    ranked = {}
    for setting, group in by_setting.items():
        scored = [p for p in group if scores.get(p.folder) is not None]
        scored.sort(key=lambda p: _rank_key(scores[p.folder], metric, p.folder))  # type: ignore[arg-type]
        ranked[setting] = (len(group), scored)
    return ranked


def keep_best(
    points: Sequence[Point],
    scores: Mapping[str, Mapping[str, float | None] | None],
    eta: int,
    metric: str,
) -> list[Point]:
    """The points the next rung continues: per setting, the best ``kept_count`` of those with a
    score, in the grid's order."""
    kept = {
        p.folder
        for size, ranked in ranked_by_setting(points, scores, metric).values()
        for p in ranked[: kept_count(size, eta)]
    }
    return [p for p in points if p.folder in kept]


def best_per_setting(
    points: Sequence[Point],
    scores: Mapping[str, Mapping[str, float | None] | None],
    metric: str,
) -> list[Point]:
    """Each setting's best point (the tuning's choice), in the grid's order."""
    best = {
        ranked[0].folder
        for _, ranked in ranked_by_setting(points, scores, metric).values()
        if ranked
    }
    return [p for p in points if p.folder in best]


@dataclass
class RungRecord:
    """A finished rung: its epochs, its points' scores (None: failed), those it kept, how many
    it trained (the others were done before) and its wall time."""

    rung: int
    epochs: int
    scores: dict[str, dict[str, float | None] | None]
    kept: list[str]
    trained: int
    wall_s: float


@dataclass
class HalvingRecord:
    """``halving.json``: the sweep's settings, its points, and its finished rungs."""

    eta: int
    min_epochs: int
    max_epochs: int
    metric: str
    points: list[Point]
    rungs: list[RungRecord] = field(default_factory=list)

    def same_sweep(self, other: HalvingRecord) -> list[str]:
        """The settings in which ``other`` differs from this sweep (none: the same sweep)."""
        keys = ("eta", "min_epochs", "max_epochs", "metric", "points")
        return [key for key in keys if getattr(self, key) != getattr(other, key)]

    def write(self, sweep_dir: Path) -> None:
        write_json(Path(sweep_dir) / RECORD_FILE, asdict(self))

    @classmethod
    def read(cls, path: Path) -> HalvingRecord:
        data: dict[str, Any] = read_json_file(path)
        points = [
            Point(p["folder"], tuple(p["overrides"]), tuple(p["setting"])) for p in data["points"]
        ]
        rungs = [RungRecord(**rung) for rung in data.get("rungs", [])]
        return cls(
            data["eta"], data["min_epochs"], data["max_epochs"], data["metric"], points, rungs
        )
