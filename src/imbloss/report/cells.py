"""Table cells: one figure per (loss, setting), its mean over seeds with a 95 % interval, and its
run counts.

A cell averages the selected run of every replicate (training seed x subsampling seed) of one loss
in one setting; ``n`` is how many it averages; ``ci_low`` / ``ci_high`` bound the 95 % Student-t
interval of that mean (n − 1 degrees of freedom: mean ± t · s / √n, s the sample std), NaN for
n = 1. ``n_failed`` / ``n_unfinished`` count the runs meant
for that cell (any grid point) that failed or never finished. A cell with ``n = 0`` is missing: it
is shown as a dash, never filled in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from imbloss.intervals import t_interval
from imbloss.report.runs import STATUS_FAILED, STATUS_OK, STATUS_STOPPED, STATUS_UNFINISHED
from imbloss.report.selection import CELL_KEYS, TUNING_KEYS


def failure_counts(runs: pd.DataFrame, keys: Sequence[str] = CELL_KEYS) -> pd.DataFrame:
    """``n_failed`` and ``n_unfinished`` for every ``keys`` group of runs (0 where none)."""
    keys = list(keys)
    frame = runs[keys].copy()
    frame["n_failed"] = (runs["status"] == STATUS_FAILED).astype(int)
    frame["n_unfinished"] = (runs["status"] == STATUS_UNFINISHED).astype(int)
    counts = frame.groupby(keys, dropna=False, sort=False)[["n_failed", "n_unfinished"]].sum()
    return counts.reset_index()


def metric_cells(
    selected: pd.DataFrame, runs: pd.DataFrame, metric: str, keys: Sequence[str] = CELL_KEYS
) -> pd.DataFrame:
    """Mean, sample std (ddof 1), 95 % t interval and count of ``metric`` over the selected runs,
    per ``keys`` group.

    Groups that only have failed or unfinished runs appear with ``n = 0`` and NaN figures.
    """
    keys = list(keys)
    grouped = selected.groupby(keys, dropna=False, sort=False)[metric]
    stats = grouped.agg(mean="mean", std="std", n="count").reset_index()
    bounds = grouped.agg(lambda values: t_interval(values.dropna().tolist()))
    stats[["ci_low", "ci_high"]] = pd.DataFrame(bounds.tolist(), columns=["low", "high"]).values
    cells = stats.merge(failure_counts(runs, keys), on=keys, how="outer")
    cells[["n", "n_failed", "n_unfinished"]] = (
        cells[["n", "n_failed", "n_unfinished"]].fillna(0).astype(int)
    )
    cells.loc[cells["n"] == 0, ["mean", "std", "ci_low", "ci_high"]] = math.nan
    cells["metric"] = metric
    return cells


def time_cells(runs: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Training time per ``keys`` group, as the first source's Table I counts it.

    ``whole_s`` = sum of ``fit_time_s`` over every grid point of one tuning (one setting and
    replicate), averaged over the tunings of the group; ``mean`` = average one-run time;
    ``n`` = runs, ``tunings`` = tunings averaged. Only finished runs have a fit time; the runs
    a halving rung stopped count too (their time is part of the tuning's cost).
    """
    keys = list(keys)
    ok = runs[runs["status"].isin([STATUS_OK, STATUS_STOPPED])]
    per_tuning = ok.groupby(list(TUNING_KEYS), dropna=False)["fit_time_s"].sum().reset_index()
    whole = per_tuning.groupby(keys, dropna=False, sort=False)["fit_time_s"].agg(
        whole_s="mean", tunings="count"
    )
    one_run = ok.groupby(keys, dropna=False, sort=False)["fit_time_s"].agg(
        mean="mean", std="std", n="count"
    )
    cells = whole.join(one_run).reset_index()
    cells = cells.merge(failure_counts(runs, keys), on=keys, how="outer")
    counts = ["n", "tunings", "n_failed", "n_unfinished"]
    cells[counts] = cells[counts].fillna(0).astype(int)
    cells["metric"] = "fit_time_s"
    return cells


@dataclass(frozen=True)
class NumberFormat:
    """How a table prints its figures: ``scale`` (100 for percent) and decimals."""

    scale: float
    decimals: int

    def __call__(self, value: float) -> str:
        return f"{value * self.scale:.{self.decimals}f}"


PERCENT = NumberFormat(scale=100.0, decimals=2)
FRACTION = NumberFormat(scale=1.0, decimals=4)


def format_seconds(seconds: float) -> str:
    """Seconds as the first source's Table I prints them (``2,052``); two decimals below 10 s."""
    return f"{seconds:,.0f}" if seconds >= 10 else f"{seconds:.2f}"


def count_note(n: int, n_failed: int, n_unfinished: int) -> str:
    """``[n=3]``, ``[n=3, 1 failed]``, ``[n=0, 2 unfinished]``: what a cell averages and lacks."""
    parts = [f"n={n}"]
    if n_failed:
        parts.append(f"{n_failed} failed")
    if n_unfinished:
        parts.append(f"{n_unfinished} unfinished")
    return "[" + ", ".join(parts) + "]"
