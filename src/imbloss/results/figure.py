"""The results page's figure: every method's paired G-mean difference against PF, per IR.

One panel per IR, one row per method: the mean of G-mean(method) − G-mean(PF) over the seeds both
finished (whole test split, in points) with its 95 % t interval, the band of ±``SIMILAR_PP``
points the page calls similar shaded. A filled marker is a complete pair of cells (every planned
seed of both finished: a verdict may use it); an open marker is a pair still missing seeds. Left
of 0, PF is better. The panels share one x range: the intervals of pairs with at least
``MIN_SCALING_N`` seeds, at most ±``MAX_PP``; a wider interval runs off the panel's edge. Drawn with
matplotlib's object API, so the caller's pyplot backend is untouched.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from imbloss.report.plots import save_figure

FIGURE_NAME = "results_against_pf.png"
# The x range covers the intervals of pairs with this many seeds (a 2-seed t interval is ±12.7
# standard deviations wide), within ±MAX_PP points.
MIN_SCALING_N = 3
MAX_PP = 12.0


@dataclass(frozen=True)
class Point:
    """One method at one IR: method − PF (pp) over ``n`` paired seeds, its interval (NaN below
    2 seeds) and whether both cells are complete."""

    ir: int
    method: str
    n: int
    mean: float
    low: float
    high: float
    complete: bool


def against_pf_figure(points: Sequence[Point], methods: Sequence[str], similar_pp: float) -> Figure:
    """The figure of ``points``: a panel per IR (in the order first met), ``methods`` top down."""
    irs = list(dict.fromkeys(point.ir for point in points))
    figure = Figure(figsize=(3.2 * max(len(irs), 1), 0.45 * len(methods) + 1.4))
    axes = figure.subplots(1, max(len(irs), 1), sharex=True, sharey=True, squeeze=False)[0]
    reach = _x_reach(points, similar_pp)
    for ax, ir in zip(axes, irs, strict=False):
        ax.set_xlim(-reach, reach)
        if not any(point.ir == ir and point.n for point in points):
            ax.text(0.5, 0.5, "no runs yet", transform=ax.transAxes, ha="center", color="0.3")
        ax.axvspan(-similar_pp, similar_pp, color="0.92", zorder=0)
        ax.axvline(0.0, color="0.4", linewidth=0.8, zorder=1)
        for point in points:
            if point.ir != ir or point.n == 0:
                continue
            row = methods.index(point.method)
            has_interval = point.n >= 2 and not math.isnan(point.low)
            xerr = [[point.mean - point.low], [point.high - point.mean]] if has_interval else None
            ax.errorbar(
                point.mean,
                row,
                xerr=xerr,
                fmt="o",
                color="C0",
                markerfacecolor="C0" if point.complete else "white",
                capsize=3,
                zorder=2,
            )
            ax.annotate(
                f"n={point.n}",
                (min(point.high if has_interval else point.mean, reach), row),
                xytext=(4, 3),
                textcoords="offset points",
                fontsize=7,
                color="0.3",
            )
        ax.set_title(f"IR={ir}")
        ax.set_xlabel("method − PF, G-mean (pp)")
    axes[0].set_yticks(range(len(methods)), list(methods))
    axes[0].set_ylim(len(methods) - 0.5, -0.5)
    figure.suptitle(
        "Whole test split, seeds paired; filled: complete cells, open: seeds missing; "
        f"grey: ±{similar_pp:g} pp",
        fontsize=8,
    )
    return figure


def _x_reach(points: Sequence[Point], similar_pp: float) -> float:
    """Half the panels' x range: the widest bound of the intervals of pairs with at least
    ``MIN_SCALING_N`` seeds (means of the others), at least twice ``similar_pp``, at most
    ``MAX_PP``; 5 % to spare."""
    bounds = [2 * similar_pp]
    for point in points:
        if point.n >= MIN_SCALING_N:
            bounds += [abs(point.low), abs(point.high)]
        elif point.n:
            bounds.append(abs(point.mean))
    return 1.05 * min(max(bounds), MAX_PP)


def write_against_pf_figure(
    points: Sequence[Point], methods: Sequence[str], similar_pp: float, path: Path
) -> Path:
    """Save :func:`against_pf_figure` as a PNG at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_figure(against_pf_figure(points, methods, similar_pp), path)
