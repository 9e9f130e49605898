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
SCHEDULE = 10  # campaign=tuning
GRIDS = {"wce_grid": 19, "pf": 1}  # sweep folder: points (loss=pf is one run)
HALVINGS = {"wce_halving": 19, "focal_alpha_halving": 133}  # sweep=wce, sweep=focal_alpha


@pytest.mark.parametrize(("folder", "points"), GRIDS.items())
def test_every_full_grid_point_finished_its_schedule(folder: str, points: int) -> None:
    runs = load_runs(TUNING_ROOT / folder)
    assert len(runs) == points and (runs["tuning"] == "grid").all()
    assert (runs["status"] == "ok").all() and (runs["epochs"] == SCHEDULE).all()
    assert runs["hparams"].nunique() == points


@pytest.mark.parametrize(("folder", "points"), HALVINGS.items())
def test_every_halving_rung_follows_the_sweepers_arithmetic(folder: str, points: int) -> None:
    halving = load_runs(TUNING_ROOT / folder)
    assert len(halving) == points and (halving["tuning"] == "halving").all()
    assert set(halving["status"]) <= {"ok", "stopped"}
    assert halving["hparams"].nunique() == points
    record = HalvingRecord.read(TUNING_ROOT / folder / RECORD_FILE)
    epochs = rung_epochs(record.min_epochs, record.max_epochs, record.eta)
    assert record.max_epochs == SCHEDULE
    assert [rung.epochs for rung in record.rungs] == epochs
    sizes = [points]
    for _ in epochs[1:]:
        sizes.append(kept_count(sizes[-1], record.eta))
    assert [len(rung.scores) for rung in record.rungs] == sizes
    # each point trained to the epochs of the last rung it reached
    reached = {p.folder: 0 for p in record.points}
    for rung in record.rungs:
        for point in rung.scores:
            reached[point] = rung.epochs
    by_folder = halving.set_index(halving["run_dir"].str.split("/").str[-1])
    for point, trained in reached.items():
        assert by_folder.loc[point, "epochs"] == trained, point
        assert (by_folder.loc[point, "status"] == "ok") == (trained == SCHEDULE), point


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
