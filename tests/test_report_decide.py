"""The report's deciding figures on fixture runs, recomputed by hand: the whole test split's
tables, paired differences against a reference (a seed missing for one loss, n = 1), the last
epoch's figures (``--figures last``) and the new plots."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from imbloss.errors import ConfigError
from imbloss.report import build_report, load_runs, select_on_validation
from imbloss.report.__main__ import main
from imbloss.report.paired import paired_differences, paired_tables
from imbloss.report.render import table_markdown
from test_report import write_run

T_975 = {1: 12.706204736174707, 2: 4.302652729749464}  # t quantiles, 1 and 2 degrees of freedom


def _gmean(recall: tuple[float, ...]) -> float:
    return math.prod(recall) ** (1 / len(recall))


# recall vectors per (loss, seed); the whole test split's are shifted by +0.05 for class 0
RECALLS = {
    ("pf", 0): (0.6, 0.9, 0.7, 0.8),
    ("pf", 1): (0.5, 0.9, 0.7, 0.8),
    ("pf", 2): (0.4, 0.9, 0.7, 0.8),
    ("wce", 0): (0.7, 0.9, 0.7, 0.8),  # seed 2 of wce failed: paired over seeds 0 and 1
    ("wce", 1): (0.5, 0.9, 0.7, 0.8),  # equal to pf seed 1: a tie
    ("ce", 0): (0.0, 0.9, 0.7, 0.8),  # zero recall on the protocol test, not on the whole one
}


def _full(recall: tuple[float, ...]) -> tuple[float, ...]:
    return (recall[0] + 0.05, *recall[1:])


@pytest.fixture
def runs_root(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    for (loss, seed), recall in RECALLS.items():
        write_run(root, f"{loss}{seed}", loss=loss, seed=seed, recall=recall,
                  full_recall=_full(recall), last_recall=(0.2, 0.9, 0.7, 0.8))  # fmt: skip
    write_run(root, "wce2", loss="wce", seed=2, status="failed")
    return root


def _diff_row(frame: pd.DataFrame, loss: str, test_set: str) -> pd.Series:
    rows = frame[(frame["loss"] == loss) & (frame["test_set"] == test_set)]
    assert len(rows) == 1
    return rows.iloc[0]


def test_paired_differences_by_hand(runs_root: Path) -> None:
    selected = select_on_validation(load_runs(runs_root))
    for test_set, view in (("test", lambda r: r), ("full_test", _full)):
        frame = paired_differences(selected, "pf", test_set)
        assert set(frame["loss"]) == {"wce", "ce"}
        diffs = [
            _gmean(view(RECALLS[("wce", s)])) - _gmean(view(RECALLS[("pf", s)])) for s in (0, 1)
        ]
        wce = _diff_row(frame, "wce", test_set)
        assert (wce["n"], wce["wins"], wce["ties"], wce["losses"]) == (2, 1, 1, 0)
        mean = sum(diffs) / 2
        half = T_975[1] * abs(diffs[0] - diffs[1]) / math.sqrt(2) / math.sqrt(2)  # s = |d1-d2|/√2
        assert wce["mean"] == pytest.approx(mean)
        assert (wce["ci_low"], wce["ci_high"]) == (
            pytest.approx(mean - half),
            pytest.approx(mean + half),
        )
        ce = _diff_row(frame, "ce", test_set)
        expected = _gmean(view(RECALLS[("ce", 0)])) - _gmean(view(RECALLS[("pf", 0)]))
        assert ce["n"] == 1 and ce["mean"] == pytest.approx(expected)
        assert math.isnan(ce["ci_low"]) and (ce["wins"], ce["losses"]) == (0, 1)
    assert _diff_row(paired_differences(selected, "pf", "test"), "ce", "test")["mean"] == (
        pytest.approx(-_gmean(RECALLS[("pf", 0)]))  # ce's protocol G-mean is 0
    )


def test_paired_table_marks_too_few_seeds(runs_root: Path) -> None:
    selected = select_on_validation(load_runs(runs_root))
    (table,) = paired_tables(selected, "pf")
    markdown = table_markdown(table)
    assert table.name == "paired_pf_synthetic_step_MLP"
    assert "1/1/0 [n=2] †" in markdown and "0/0/1 [n=1] †" in markdown
    assert "n < 3" in markdown


def test_whole_test_split_tables_and_reference_choice(runs_root: Path, tmp_path: Path) -> None:
    report = build_report(runs_root, tmp_path / "report", formats=("csv", "md"))
    assert report.reference == "pf"
    cells = pd.read_csv(tmp_path / "report" / "gmean_auc_synthetic_step_full.csv")
    pf = cells[(cells["loss"] == "pf") & (cells["metric"] == "gmean")].iloc[0]
    expected = [_gmean(_full(RECALLS[("pf", s)])) for s in (0, 1, 2)]
    assert pf["mean"] == pytest.approx(sum(expected) / 3) and pf["n"] == 3
    text = (tmp_path / "report" / "report.md").read_text()
    assert "### Whole test split — G-mean and AUC (%) per IR" in text
    assert text.index("### G-mean and AUC (%) per IR") < text.index("### Whole test split")
    with pytest.raises(ConfigError, match=r"reference loss 'focal'.*accepted: ce, wce, pf"):
        build_report(runs_root, tmp_path / "other", formats=("csv",), reference="focal")
    other = build_report(runs_root, tmp_path / "wce", formats=("md",), reference="wce")
    assert (tmp_path / "wce" / "paired_wce_synthetic_step_MLP.md").is_file()
    assert other.reference == "wce"


def test_figures_last_builds_every_table_from_the_last_epoch(
    runs_root: Path, tmp_path: Path
) -> None:
    report = build_report(runs_root, tmp_path / "report", figures="last")
    cells = pd.read_csv(tmp_path / "report" / "gmean_auc_synthetic_step.csv")
    pf = cells[(cells["loss"] == "pf") & (cells["metric"] == "gmean")].iloc[0]
    assert pf["mean"] == pytest.approx(_gmean((0.2, 0.9, 0.7, 0.8)))
    text = (tmp_path / "report" / "report.md").read_text()
    assert "figures of: the weights after the final epoch" in text
    assert "Weights after the final epoch." in text
    assert report.figures == "last"
    plots = {p.name for p in (tmp_path / "report" / "plots").glob("*.png")}
    assert {
        "gmean_ci_synthetic_step_MLP.png",
        "batches_missing_synthetic_step_MLP_ir10.png",
    } <= plots


def test_cli_options_and_bad_values(
    runs_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "o")
    args = [str(runs_root), "--figures", "last", "--reference", "wce", "--format", "md"]
    assert main([*args, "--out", out]) == 0
    assert "figures of the last weights" in capsys.readouterr().out
    with pytest.raises(SystemExit) as stopped:
        main([str(runs_root), "--figures", "best"])
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert "'best'" in error and "selected" in error
    assert main([str(runs_root), "--reference", "nope", "--format", "csv", "--out", out]) == 2
    assert "reference loss 'nope'" in capsys.readouterr().err
