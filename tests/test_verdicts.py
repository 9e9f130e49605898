"""The statistics a campaign decides by, against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from imbloss.results.verdicts import (
    CONTRADICTED,
    NOT_DECIDED,
    SUPPORTED,
    Paired,
    combine,
    correlation,
    difference_verdict,
    holm,
    paired,
    pairing_gain,
    similarity_verdict,
    variance_components,
)

T975_4 = 2.7764451051977934  # t(0.975, 4 df)
T95_4 = 2.1318467863266495  # t(0.95, 4 df)


def test_paired_interval_tost_and_counts_by_hand() -> None:
    # d = 1, 2, 3, 0, 4: mean 2, sd sqrt(2.5), se sqrt(0.5)
    result = paired([1.0, 2.0, 3.0, 0.0, 4.0], confidence=0.95, margin=2.0)
    se = math.sqrt(2.5) / math.sqrt(5)
    assert (result.n, result.mean) == (5, pytest.approx(2.0))
    assert (result.low, result.high) == (
        pytest.approx(2 - T975_4 * se),
        pytest.approx(2 + T975_4 * se),
    )
    assert (result.tost_low, result.tost_high) == (
        pytest.approx(2 - T95_4 * se),
        pytest.approx(2 + T95_4 * se),
    )
    assert (result.wins, result.ties, result.losses) == (4, 1, 0)
    # TOST p: max of P(T > (2 + 2)/se) and P(T < (2 - 2)/se) = 0.5
    assert result.p_tost == pytest.approx(0.5)
    assert result.p_greater == pytest.approx(stats.t.sf(2 / se, 4))


def test_win_tie_loss_counts() -> None:
    result = paired([1.0, 0.0, -2.0, 3.0])
    assert (result.wins, result.ties, result.losses) == (2, 1, 1)
    assert paired([]).n == 0 and paired([]).text() == "—"


def _result(low: float, high: float, n: int = 5, tost: tuple[float, float] | None = None) -> Paired:
    tost_low, tost_high = tost if tost is not None else (low, high)
    return Paired(n, (low + high) / 2, low, high, 0, 0, 0, 0.01, tost_low, tost_high, 0.01)


def test_difference_verdict() -> None:
    assert difference_verdict(_result(0.5, 3.0), complete=True) == SUPPORTED
    assert difference_verdict(_result(-3.0, -0.5), complete=True) == CONTRADICTED
    assert difference_verdict(_result(-1.0, 3.0), complete=True) == NOT_DECIDED
    assert difference_verdict(_result(0.5, 3.0), complete=False) == NOT_DECIDED
    assert difference_verdict(_result(0.5, 3.0, n=2), complete=True) == NOT_DECIDED


def test_similarity_tost_is_narrower_than_the_two_sided_rule() -> None:
    # the 95 % interval reaches 2.03 (outside ±2), the 90 % one stops at 1.77 (inside): the
    # committed precision check's pairs
    result = _result(-0.72, 2.03, n=9, tost=(-0.45, 1.77))
    assert similarity_verdict([result], True, margin=2.0, test="tost") == SUPPORTED
    assert similarity_verdict([result], True, margin=2.0, test="interval") == NOT_DECIDED
    outside = _result(2.1, 4.0, tost=(2.3, 3.8))
    assert similarity_verdict([result, outside], True, margin=2.0) == CONTRADICTED
    assert similarity_verdict([result], False, margin=2.0) == NOT_DECIDED
    assert combine([SUPPORTED, SUPPORTED]) == SUPPORTED
    assert combine([SUPPORTED, NOT_DECIDED]) == NOT_DECIDED
    assert combine([NOT_DECIDED, CONTRADICTED]) == CONTRADICTED


def test_holm_by_hand() -> None:
    # alpha 0.05, m = 4: sorted p 0.001 <= 0.0125, 0.013 <= 0.0167, 0.04 > 0.025: stop
    assert holm([0.04, 0.001, 0.013, 0.03], 0.05) == [False, True, True, False]
    assert holm([0.02, math.nan], 0.05) == [True, False]  # 0.02 <= 0.05 / 2
    assert holm([0.03, math.nan], 0.05) == [False, False]  # the NaN counts in m


def test_variance_components_by_hand() -> None:
    # cells x replicates; replicate means 2, 4, 6; cell means 3, 5; grand 4
    table = np.array([[1.0, 3.0, 5.0], [3.0, 5.0, 7.0]]) + np.array([[0.5, -0.5, 0.0], [0, 0, 0]])
    # residual SS by hand from the ANOVA identity
    grand = table.mean()
    ss_rep = 2 * ((table.mean(axis=0) - grand) ** 2).sum()
    ss_cell = 3 * ((table.mean(axis=1) - grand) ** 2).sum()
    ss_res = ((table - grand) ** 2).sum() - ss_rep - ss_cell
    found = variance_components(table)
    assert found is not None
    assert found.residual == pytest.approx(ss_res / 2)
    assert found.replicate == pytest.approx((ss_rep / 2 - ss_res / 2) / 2)
    assert 0 < found.icc < 1 and found.p_replicate < 0.2
    assert variance_components(np.ones((1, 5))) is None
    # no shared effect: the component is truncated at 0
    noise = np.array([[0.0, 1.0, 0.0, 1.0], [1.0, 0.0, 1.0, 0.0]])
    assert variance_components(noise).replicate == 0.0  # type: ignore[union-attr]


def test_pairing_gain_and_correlation() -> None:
    shared = np.array([0.0, 2.0, -1.0, 3.0, 1.0])
    a, b = shared + np.array([0.1, -0.1, 0.0, 0.1, -0.1]), shared + 1.0
    # a and b move together: Var(a - b) is tiny next to Var a + Var b
    assert pairing_gain(a, b) > 50
    assert correlation(a, b) > 0.99
    # opposite moves: pairing costs
    assert pairing_gain(shared, -shared) == pytest.approx(1.0 / 2.0)
    assert correlation(shared, -shared) == pytest.approx(-1.0)
    assert math.isnan(pairing_gain([1.0, 2.0], [1.0, 3.0]))
