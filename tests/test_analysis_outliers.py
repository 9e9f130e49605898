"""The outlier example of the first source (Sec. III-D, Fig. 1): values, statements, the CLI."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from imbloss.analysis.__main__ import main
from imbloss.analysis.outliers import (
    LOSSES,
    OUTLIER_PROBS,
    example_losses,
    geometric_and_arithmetic_means,
    outlier_curves,
)


@pytest.fixture(scope="module")
def curves() -> pd.DataFrame:
    return outlier_curves()


@pytest.mark.parametrize("x", [0.001, 0.3, 0.9])
def test_values_match_the_formulas(x):
    logs = [math.log(p) for p in (x, 0.8, 0.9)]
    values = example_losses(x)
    assert values["ce"] == pytest.approx(-(sum(logs) + math.log(0.2)) / 4, rel=1e-5)
    # weighted mean with alpha = (1/3, 1/3, 1/3, 1): divided by sum(alpha) = 2
    assert values["wce"] == pytest.approx((-sum(logs) / 3 - math.log(0.2)) / 2, rel=1e-5)
    focal = sum((1 - p) ** 2 * -math.log(p) for p in (x, 0.8, 0.9, 0.2)) / 4
    assert values["focal"] == pytest.approx(focal, rel=1e-5)
    pf = -(math.log((x + 1.7) / 3) + math.log(0.2)) / 2
    assert values["pf"] == pytest.approx(pf, rel=1e-5)


def test_source_means_of_the_majority_class():
    geometric, arithmetic = geometric_and_arithmetic_means()
    assert round(geometric, 2) == 0.09 and round(arithmetic, 2) == 0.57


def test_wce_and_focal_fall_as_the_outlier_probability_rises(curves):
    assert len(curves) == len(OUTLIER_PROBS) and list(curves.columns) == ["outlier_prob", *LOSSES]
    for name in ("wce", "focal", "focal_alpha", "ce"):
        assert (curves[name].diff().iloc[1:] < 0).all(), name


def test_pf_moves_with_the_minority_sample_not_the_outlier(curves):
    """PF: the outlier (0.001 -> 0.9) moves the loss less than half of what the minority sample
    (0.2 -> 0.9) does; WCE and FL: the outlier moves the loss more than the minority sample."""
    for name, bound in (("pf", 0.5), ("wce", 1.0), ("focal", 1.0)):
        outlier_effect = curves[name].iloc[0] - curves[name].iloc[-1]
        minority_effect = example_losses(0.001)[name] - example_losses(0.001, minority=0.9)[name]
        ratio = outlier_effect / minority_effect
        assert (ratio < bound) if name == "pf" else (ratio > bound), (name, ratio)


def test_pf_is_the_flattest_of_the_losses_with_per_sample_terms(curves):
    share = {name: 1 - curves[name].iloc[-1] / curves[name].iloc[0] for name in LOSSES}
    assert all(share["pf"] < share[name] for name in ("ce", "wce", "focal", "focal_alpha", "ldam"))


def test_cli_writes_the_csv_and_the_png(tmp_path, curves, capsys):
    out = tmp_path / "fig1"
    assert main(["outliers", "--out", str(out)]) == 0
    assert f"wrote {out / 'outliers.csv'}" in capsys.readouterr().out
    written = pd.read_csv(out / "outliers.csv")
    pd.testing.assert_frame_equal(written, curves, rtol=1e-5)
    assert (out / "outliers.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
