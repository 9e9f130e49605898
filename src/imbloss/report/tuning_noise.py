"""How noisy is a grid's choice: the validation G-mean against the whole test split's.

At IR=100 the validation split holds 6 images per minority class, so the grid point a tuning
chooses on validation G-mean may be the luckiest draw rather than the best point. For every
tuning with at least ``MIN_POINTS`` finished grid points (one loss, setting and replicate):

- Spearman's ρ between the points' validation G-mean and their whole-test-split G-mean, with a
  95 % interval from Fisher's z with the standard error ``sqrt(1.06 / (n - 3))`` of a rank
  correlation (Fieller, Hartley and Pearson 1957; none for n <= 3);
- the regret: the whole-split G-mean of the best point in hindsight minus that of the point chosen
  on validation (the report's choice: :func:`imbloss.report.selection.select_on_validation`), in
  percentage points; 0 when validation found the best point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from imbloss.report.labels import loss_label
from imbloss.report.runs import FULL_PREFIX, REPLICATE_COLUMNS, SETTING_COLUMNS, STATUS_OK
from imbloss.report.selection import TUNING_KEYS, select_on_validation

MIN_POINTS = 3
NAME = "tuning_noise"
COLUMNS = (
    "loss",
    *SETTING_COLUMNS,
    *REPLICATE_COLUMNS,
    "points",
    "rho",
    "rho_low",
    "rho_high",
    "chosen",
    "best",
    "regret",
)


def spearman_interval(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Spearman's ρ of ``x`` and ``y`` and its 95 % interval (NaN bounds for n <= 3); all NaN
    when either is constant (ρ is not defined)."""
    n = len(x)
    if np.ptp(np.asarray(x, dtype=float)) == 0 or np.ptp(np.asarray(y, dtype=float)) == 0:
        return math.nan, math.nan, math.nan
    rho = float(stats.spearmanr(x, y).statistic)
    if n <= 3 or math.isnan(rho):
        return rho, math.nan, math.nan
    z = math.atanh(max(min(rho, 1 - 1e-12), -1 + 1e-12))
    half = float(stats.norm.ppf(0.975)) * math.sqrt(1.06 / (n - 3))
    return rho, math.tanh(z - half), math.tanh(z + half)


def noise_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per full grid of at least ``MIN_POINTS`` finished points (``COLUMNS``).

    A halving sweep is no grid: the points its last rung finished are those its earlier rungs
    ranked best on validation, so their ρ and regret would measure a chosen few, not the grid.
    """
    full_gmean = FULL_PREFIX + "gmean"
    ok = runs[
        (runs["status"] == STATUS_OK)
        & (runs["tuning"] == "grid")
        & runs["val_gmean"].notna()
        & runs[full_gmean].notna()
    ]
    rows = []
    for key, group in ok.groupby(list(TUNING_KEYS), dropna=False, sort=True):
        if group["hparams"].nunique() < MIN_POINTS:
            continue
        rho, low, high = spearman_interval(
            group["val_gmean"].to_numpy(), group[full_gmean].to_numpy()
        )
        pick = select_on_validation(group).iloc[0]  # the report's own choice
        best = group.loc[group[full_gmean].idxmax()]
        regret = 100 * (best[full_gmean] - pick[full_gmean])
        rows.append((*key, len(group), rho, low, high, pick["hparams"], best["hparams"], regret))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def tuning_cells(row: Any) -> list[str]:
    """The cells that name a tuning in a table row (a ``frame.itertuples`` row): its method (the
    loss), IR and seed."""
    return [loss_label(row.loss), f"{row.ir:g}", f"{row.seed:g}"]


def rho_text(rho: float, low: float, high: float) -> str:
    """ρ with its interval, ``0.41 [-0.05, 0.74]``; ρ alone without one; ``—`` without ρ."""
    if math.isnan(rho):
        return "—"
    return f"{rho:.2f}" if math.isnan(low) else f"{rho:.2f} [{low:.2f}, {high:.2f}]"


@dataclass(frozen=True)
class NoiseTable:
    """The noise of every grid's choice (tidy ``frame``), rendered like the paired tables."""

    frame: pd.DataFrame
    name: str = NAME
    title: str = "How noisy is the choice of a grid point — validation against the whole test split"
    caption: str = (
        "Per tuning (loss, setting, seeds): the grid points finished; Spearman's ρ between their "
        "validation G-mean and their whole-test-split G-mean, with its 95 % interval (Fisher's "
        "z); the point chosen on validation G-mean and the best one in hindsight; the regret, "
        "the best point's whole-split G-mean minus the chosen one's, in percentage points."
    )

    def body(self) -> tuple[list[str], list[list[str]]]:
        headers = [
            "Method",
            "IR",
            "Seed",
            "Points",
            "ρ [95 % interval]",
            "Chosen",
            "Best",
            "Regret (pp)",
        ]
        lines = []
        for row in self.frame.itertuples(index=False):
            lines.append(
                [
                    *tuning_cells(row),
                    str(row.points),
                    rho_text(row.rho, row.rho_low, row.rho_high),
                    row.chosen,
                    row.best,
                    f"{row.regret:.2f}",
                ]
            )
        return headers, lines


def noise_table(runs: pd.DataFrame) -> NoiseTable | None:
    """The table, or None when no tuning has ``MIN_POINTS`` grid points."""
    frame = noise_frame(runs)
    return NoiseTable(frame) if not frame.empty else None
