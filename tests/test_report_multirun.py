"""A real tiny multirun through ``train.py -m``, then ``python -m imbloss.report`` on it.

Two losses (WCE tuned on its grid cut to two points with ``sweep=wce sweep.limit=2``, and the
parameter-free PF-loss), two IRs, one epoch on the synthetic data: six runs. The report's tables
must hold exactly the four (loss, IR) cells, each with the test figures of the run that has the
best validation G-mean in its grid, read here straight from the runs' ``metrics.json``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from conftest import REPO_ROOT

TINY = (
    "dataset=synthetic",
    "model=mlp",
    "model.hidden=[64]",
    "dataset.batch_size=50",
    "optimizer.lr=0.01",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "ir=2,4",
)


def _metrics(root: Path) -> list[dict[str, Any]]:
    runs = []
    for path in sorted(root.glob("*/*/metrics.json")):
        metrics = json.loads(path.read_text())
        metrics["run_dir"] = path.parent.relative_to(root).as_posix()
        runs.append(metrics)
    return runs


def _best_on_validation(runs: list[dict[str, Any]]) -> dict[tuple[str, float], dict[str, Any]]:
    """Per (loss, ir): max validation G-mean, then validation AUC; the first folder on a tie."""
    best: dict[tuple[str, float], dict[str, Any]] = {}
    for run in runs:  # sorted by folder: a later run must be strictly better to replace
        key = (run["loss"], float(run["ir"]))
        if key not in best or (run["val_gmean"], run["val_auc"]) > (
            best[key]["val_gmean"],
            best[key]["val_auc"],
        ):
            best[key] = run
    return best


def test_report_of_a_real_tiny_multirun(
    tmp_path: Path, run_cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    tuned = run_cli(["-m", "sweep=wce", "sweep.limit=2", *TINY])
    assert tuned.returncode == 0, tuned.stderr[-3000:]
    plain = run_cli(["-m", "loss=pf", *TINY])
    assert plain.returncode == 0, plain.stderr[-3000:]

    root = tmp_path / "logs" / "multiruns"
    runs = _metrics(root)
    assert sorted((r["loss"], r["ir"], r["hparams"].get("scale")) for r in runs) == [
        ("pf", 2, None),
        ("pf", 4, None),
        ("wce", 2, 0.1),
        ("wce", 2, 0.2),
        ("wce", 4, 0.1),
        ("wce", 4, 0.2),
    ]

    report = subprocess.run(
        [sys.executable, "-m", "imbloss.report", str(root)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert report.returncode == 0, report.stderr
    assert "read 6 runs" in report.stdout
    out = root / "report"

    best = _best_on_validation(runs)
    cells = pd.read_csv(out / "gmean_auc_synthetic_step.csv")
    assert sorted(zip(cells["loss"], cells["ir"], cells["metric"], strict=True)) == sorted(
        (loss, ir, metric) for (loss, ir) in best for metric in ("gmean", "auc")
    )
    for row in cells.itertuples(index=False):
        expected = best[(row.loss, row.ir)][row.metric]
        assert row.mean == pytest.approx(expected, abs=1e-12)
        assert (row.n, row.n_failed, row.status) == (1, 0, "ok")

    every = pd.read_csv(out / "all_cells.csv")
    assert len(every) == 4 * 6
    for row in every.itertuples(index=False):
        assert row.mean == pytest.approx(best[(row.loss, row.ir)][row.metric], abs=1e-12)

    selected = pd.read_csv(out / "selected.csv")
    assert sorted(selected["run_dir"]) == sorted(r["run_dir"] for r in best.values())

    times = pd.read_csv(out / "training_time.csv").set_index("loss")
    wce_times = {
        ir: [r["fit_time_s"] for r in runs if (r["loss"], r["ir"]) == ("wce", ir)] for ir in (2, 4)
    }
    assert times.loc["wce", "whole_s"] == pytest.approx((sum(wce_times[2]) + sum(wce_times[4])) / 2)
    assert times.loc["wce", "n"] == 4 and times.loc["pf", "n"] == 2

    markdown = (out / "gmean_auc_synthetic_step.md").read_text()
    for (loss, ir), run in best.items():
        assert f"{100 * run['gmean']:.2f}" in markdown, (loss, ir)
    assert sorted(p.name for p in (out / "plots").glob("gmean_vs_ir_*.png")) == [
        "gmean_vs_ir_synthetic_step_MLP.png"
    ]
