"""The statistics a campaign decides by: paired differences, TOST, Holm, variance components.

All differences are in points (percent): d_k = 100 (x_a,k − x_b,k) on replicate k.

- :func:`paired` — n, mean, the two-sided ``confidence`` Student-t interval of the mean (n − 1
  degrees of freedom), wins/ties/losses, the one-sided p-value of "mean > 0" and the TOST
  interval and p-value for the margin.
- A *difference* claim ("a beats b"): *supported* when the interval lies above 0,
  *contradicted* below, *not decided* otherwise (:func:`difference_verdict`).
- A *similarity* claim: two one-sided tests (Schuirmann 1987) with margin δ: equivalent at level
  α when the (1 − 2α) interval lies inside (−δ, δ); *supported* then, *contradicted* when the
  95 % interval lies wholly outside, *not decided* otherwise (:func:`similarity_verdict`, test
  ``tost``). The earlier rule (test ``interval``): supported when the 95 % interval lies inside.
- Holm's step-down correction over a family of one-sided p-values (:func:`holm`).
- :func:`variance_components`: a two-way layout (cell × replicate, one run each) split into the
  replicate's component, shared by every cell of a replicate (what pairing removes), and the
  residual; :func:`pairing_gain` is Var(a) + Var(b) over Var(a − b), above 1 when pairing pays.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

SUPPORTED, CONTRADICTED, NOT_DECIDED = "supported", "contradicted", "not decided"


@dataclass(frozen=True)
class Paired:
    """Paired differences a − b (points) over ``n`` replicates."""

    n: int
    mean: float
    low: float  # the two-sided `confidence` t interval
    high: float
    wins: int
    ties: int
    losses: int
    p_greater: float  # one-sided p-value of mean > 0
    tost_low: float  # the (1 - 2 alpha) interval of TOST
    tost_high: float
    p_tost: float  # TOST p-value for the margin: max of the two one-sided tests

    def text(self) -> str:
        """``+1.13 [−0.01, +2.28], W/T/L 4/0/1, n=5`` (— without a pair)."""
        if self.n == 0:
            return "—"
        interval = f" [{self.low:+.2f}, {self.high:+.2f}]" if self.n >= 2 else ""
        return (
            f"{self.mean:+.2f}{interval}, W/T/L {self.wins}/{self.ties}/{self.losses}, n={self.n}"
        )


NO_PAIR = Paired(0, *([math.nan] * 3), 0, 0, 0, *([math.nan] * 4))


def _t_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    n = len(values)
    if n < 2:
        return math.nan, math.nan
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * values.std(ddof=1) / math.sqrt(n)
    return float(values.mean() - half), float(values.mean() + half)


def _one_sided_p(values: np.ndarray, shift: float, greater: bool) -> float:
    """p-value of the one-sided t-test of mean > shift (``greater``) or mean < shift."""
    n = len(values)
    if n < 2:
        return math.nan
    se = values.std(ddof=1) / math.sqrt(n)
    if se == 0:
        mean = float(values.mean())
        return 0.0 if (mean > shift if greater else mean < shift) else 1.0
    t = (values.mean() - shift) / se
    return float(stats.t.sf(t, n - 1) if greater else stats.t.cdf(t, n - 1))


def paired(
    diffs: Sequence[float], confidence: float = 0.95, margin: float = 2.0, alpha: float = 0.05
) -> Paired:
    """:class:`Paired` of the differences ``diffs``; :data:`NO_PAIR` for none."""
    if not diffs:
        return NO_PAIR
    values = np.asarray(diffs, dtype=float)
    low, high = _t_interval(values, confidence)
    tost_low, tost_high = _t_interval(values, 1 - 2 * alpha)
    p_tost = max(
        _one_sided_p(values, -margin, greater=True), _one_sided_p(values, margin, greater=False)
    )
    return Paired(
        n=len(values),
        mean=float(values.mean()),
        low=low,
        high=high,
        wins=int((values > 0).sum()),
        ties=int((values == 0).sum()),
        losses=int((values < 0).sum()),
        p_greater=_one_sided_p(values, 0.0, greater=True),
        tost_low=tost_low,
        tost_high=tost_high,
        p_tost=p_tost,
    )


def difference_verdict(result: Paired, complete: bool, min_pairs: int = 3) -> str:
    """ "a beats b" from a − b: the interval above 0, below 0, or neither."""
    if not complete or result.n < min_pairs:
        return NOT_DECIDED
    if result.low > 0:
        return SUPPORTED
    if result.high < 0:
        return CONTRADICTED
    return NOT_DECIDED


def similarity_verdict(
    results: Sequence[Paired],
    complete: bool,
    margin: float,
    test: str = "tost",
    min_pairs: int = 3,
) -> str:
    """ "all are similar" within ±``margin``: every comparison equivalent (``tost``: the TOST
    interval inside; ``interval``: the two-sided interval inside) -> supported; any 95 % interval
    wholly outside -> contradicted; otherwise not decided."""
    if not complete or not results or min(r.n for r in results) < min_pairs:
        return NOT_DECIDED

    def inside(r: Paired) -> bool:
        low, high = (r.tost_low, r.tost_high) if test == "tost" else (r.low, r.high)
        return -margin < low and high < margin

    if all(inside(r) for r in results):
        return SUPPORTED
    if any(r.low > margin or r.high < -margin for r in results):
        return CONTRADICTED
    return NOT_DECIDED


def combine(verdicts: Iterable[str]) -> str:
    """Verdicts that must all hold: contradicted if any is, supported if all are."""
    verdicts = list(verdicts)
    if CONTRADICTED in verdicts:
        return CONTRADICTED
    return SUPPORTED if verdicts and all(v == SUPPORTED for v in verdicts) else NOT_DECIDED


def holm(p_values: Sequence[float], alpha: float) -> list[bool]:
    """Holm's step-down procedure: which hypotheses are rejected at family-wise level ``alpha``
    (a NaN p-value is never rejected, and counts in the family size)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: (math.isnan(p_values[i]), p_values[i]))
    rejected = [False] * m
    for rank, index in enumerate(order):
        p = p_values[index]
        if math.isnan(p) or p > alpha / (m - rank):
            break
        rejected[index] = True
    return rejected


@dataclass(frozen=True)
class Components:
    """Variance components (points²) of a cells × replicates table, one run per entry."""

    cells: int
    replicates: int
    replicate: float  # shared by the cells of a replicate (truncated at 0)
    residual: float
    p_replicate: float  # F-test of the replicate effect

    @property
    def icc(self) -> float:
        """The share of the replicate component: the correlation of two cells on a replicate."""
        total = self.replicate + self.residual
        return self.replicate / total if total > 0 else math.nan


def variance_components(table: np.ndarray) -> Components | None:
    """Two-way ANOVA without replication of ``table`` (cells × replicates, in points): the
    replicate's component (MS_rep − MS_res) / cells and the residual MS_res; None below 2 × 2."""
    table = np.asarray(table, dtype=float)
    cells, replicates = table.shape
    if cells < 2 or replicates < 2:
        return None
    grand = table.mean()
    ss_rep = cells * ((table.mean(axis=0) - grand) ** 2).sum()
    ss_cell = replicates * ((table.mean(axis=1) - grand) ** 2).sum()
    ss_res = ((table - grand) ** 2).sum() - ss_rep - ss_cell
    df_rep, df_res = replicates - 1, (cells - 1) * (replicates - 1)
    ms_rep, ms_res = ss_rep / df_rep, ss_res / df_res
    p = float(stats.f.sf(ms_rep / ms_res, df_rep, df_res)) if ms_res > 0 else math.nan
    return Components(cells, replicates, max((ms_rep - ms_res) / cells, 0.0), ms_res, p)


def pairing_gain(a: Sequence[float], b: Sequence[float]) -> float:
    """(Var a + Var b) / Var(a − b) over paired values: the factor by which pairing shrinks the
    variance of a difference (1: no gain; NaN below 3 pairs or with Var(a − b) = 0)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(x) < 3:
        return math.nan
    diff = float((x - y).var(ddof=1))
    return float((x.var(ddof=1) + y.var(ddof=1)) / diff) if diff > 0 else math.nan


def correlation(a: Sequence[float], b: Sequence[float]) -> float:
    """Pearson's correlation of paired values (NaN below 3 pairs or for a constant side)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(x) < 3 or x.std() == 0 or y.std() == 0:
        return math.nan
    return float(np.corrcoef(x, y)[0, 1])
