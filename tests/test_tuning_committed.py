"""The committed tuning measurement (results/tuning, docs/halving.md "Measured"): every run
finished or stopped by its rung, the rungs as the sweeper's arithmetic says, no checkpoint, and
the page's tables exactly what the report builds from these runs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from imbloss.multirun.halving import RECORD_FILE, HalvingRecord, kept_count, rung_epochs
from imbloss.report.build import build_report
from imbloss.report.runs import load_runs

from conftest import REPO_ROOT

TUNING_ROOT = REPO_ROOT / "results" / "tuning"
HALVING_PAGE = REPO_ROOT / "docs" / "halving.md"
GRID_POINTS = 19  # sweep=wce
SCHEDULE = 10  # campaign=tuning


def test_the_grid_and_the_halving_of_sweep_wce_are_complete() -> None:
    runs = load_runs(TUNING_ROOT)
    assert set(runs["status"]) <= {"ok", "stopped"}
    grid, halving = (runs[runs["tuning"] == method] for method in ("grid", "halving"))
    assert len(grid) == len(halving) == GRID_POINTS
    assert (grid["status"] == "ok").all() and (grid["epochs"] == SCHEDULE).all()
    assert grid["hparams"].nunique() == halving["hparams"].nunique() == GRID_POINTS
    record = HalvingRecord.read(TUNING_ROOT / "wce_halving" / RECORD_FILE)
    epochs = rung_epochs(record.min_epochs, record.max_epochs, record.eta)
    assert [rung.epochs for rung in record.rungs] == epochs
    sizes = [GRID_POINTS]
    for _ in epochs[1:]:
        sizes.append(kept_count(sizes[-1], record.eta))
    assert [len(rung.scores) for rung in record.rungs] == sizes
    # each point trained to the epochs of the last rung it reached
    reached = {p.folder: 0 for p in record.points}
    for rung in record.rungs:
        for folder in rung.scores:
            reached[folder] = rung.epochs
    by_folder = halving.set_index(halving["run_dir"].str.split("/").str[-1])
    for folder, trained in reached.items():
        assert by_folder.loc[folder, "epochs"] == trained, folder
        assert (by_folder.loc[folder, "status"] == "ok") == (trained == SCHEDULE), folder


def test_no_checkpoint_is_committed() -> None:
    listed = subprocess.run(
        ["git", "ls-files", "--", "results/tuning"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    if not listed:
        pytest.skip("not a git checkout of the repository")
    assert not [path for path in listed if "/checkpoints/" in path or "/.stacked/" in path]


def test_the_pages_tables_are_the_reports(tmp_path: Path) -> None:
    build_report(TUNING_ROOT, out_dir=tmp_path, formats=("md",))
    page = HALVING_PAGE.read_text()
    for name in ("training_time", "tuning_cost", "halving_rungs", "tuning_noise"):
        table = (tmp_path / f"{name}.md").read_text()
        assert table in page, f"docs/halving.md lacks the {name} table the report builds"
