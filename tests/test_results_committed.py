"""The committed results (results/fmnist_step): complete, consistent with their configuration,
every headline figure recomputed from its predictions, and docs/results.md rebuilt from them."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from imbloss.metrics import classification_summary
from imbloss.report.runs import find_run_dirs, load_runs
from imbloss.results import plan
from imbloss.results.claims import Campaign, headline, results_page
from imbloss.runs.layout import CURVES_FILE, RunFolder
from imbloss.runs.readers import COMPACT_POSITIONS_KEY, read_predictions

from conftest import REPO_ROOT

CAMPAIGN_ROOT = REPO_ROOT / plan.CAMPAIGN_DIR
RESULTS_PAGE = REPO_ROOT / "docs" / "results.md"
RESULTS_COMMAND = (
    f"python -m imbloss.report {plan.CAMPAIGN_DIR} --claims docs/results.md --readme README.md"
)
# A committed run stays under this many bytes (configuration, curves, compact predictions, log;
# about 410 KB for a Fashion-MNIST run, 360 KB of it the two float16 log-probability arrays).
RUN_BYTES_LIMIT = 500_000
# float16 probabilities: a near-tie may change one predicted class in a thousand.
FIGURE_TOLERANCE = 2e-3


def finished_runs() -> list[Path]:
    return [d for d in find_run_dirs(CAMPAIGN_ROOT) if RunFolder(d).metrics.is_file()]


def _tracked(pattern: str) -> list[str] | None:
    """Files git tracks below the campaign folder matching ``pattern`` (None without git)."""
    if shutil.which("git") is None or not (REPO_ROOT / ".git").exists():
        return None
    listed = subprocess.run(
        ["git", "ls-files", "--", f"{plan.CAMPAIGN_DIR}/{pattern}"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return listed.stdout.splitlines()


def test_the_campaign_has_finished_runs() -> None:
    assert finished_runs(), f"no finished run under {CAMPAIGN_ROOT}"


def test_no_checkpoint_and_no_unfinished_run_is_committed() -> None:
    tracked = _tracked("**")
    if tracked is None:
        pytest.skip("not a git checkout")
    assert not [path for path in tracked if path.endswith(".ckpt")]
    folders = {Path(path).parts[2] for path in tracked if len(Path(path).parts) > 3}
    unfinished = [f for f in folders if not (CAMPAIGN_ROOT / f / "metrics.json").is_file()]
    assert not unfinished, f"committed run folders without metrics.json: {unfinished}"


@pytest.mark.parametrize("run_dir", finished_runs(), ids=lambda path: path.name)
def test_committed_run_is_complete_and_consistent(run_dir: Path) -> None:
    folder = RunFolder(run_dir)
    for path in (folder.config, run_dir / ".hydra" / "overrides.yaml", folder.curves):
        assert path.is_file(), f"{path} is missing"
    assert (run_dir / CURVES_FILE).stat().st_size > 0
    size = sum(
        p.stat().st_size for p in run_dir.rglob("*") if p.is_file() and "checkpoints" not in p.parts
    )
    assert size < RUN_BYTES_LIMIT, f"{run_dir.name}: {size} bytes"
    # the folder is the job its overrides name, and a job of the plan
    overrides = yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text())
    job = dict(item.split("=", 1) for item in overrides)
    assert run_dir.name == plan.job_dirname(job)
    planned = {
        plan.job_dirname(j)
        for precision in ("32-true", "bf16-mixed")
        for stage in plan.stages(precision, plan.EPOCHS)
        for j in stage.jobs()
    }
    assert run_dir.name in planned
    # metrics.json says what the configuration asked for
    metrics = json.loads(folder.metrics.read_text())
    config = yaml.safe_load(folder.config.read_text())
    assert metrics["status"] == "ok"
    assert metrics["loss"] == config["loss"]["name"] == job["loss"]
    assert metrics["seed"] == config["seed"] == int(job["seed"])
    assert metrics["ir"] == config["ir"] == float(job["ir"])
    assert metrics["precision"] == config["trainer"]["precision"] == job["trainer.precision"]
    assert metrics["epochs"] == config["trainer"]["max_epochs"] == int(job["trainer.max_epochs"])
    assert metrics["threads"] == config["threads"] == 1
    # every headline figure recomputes from the compact predictions
    with np.load(folder.predictions) as stored:
        assert COMPACT_POSITIONS_KEY in stored.files
    arrays = read_predictions(folder.predictions)
    minority = metrics["minority_classes"]
    for section, (target_key, probs_key) in [
        (metrics["full_test"], ("full_target", "full_probs")),
        (metrics, ("target", "probs")),
        (metrics["last"]["full_test"], ("full_target", "last_full_probs")),
    ]:
        summary = classification_summary(
            torch.from_numpy(arrays[probs_key]), torch.from_numpy(arrays[target_key]), minority
        )
        for name in ("gmean", "auc", "minority_acc", "majority_acc"):
            assert summary[name] == pytest.approx(section[name], abs=FIGURE_TOLERANCE), name


def test_results_page_is_rebuilt_from_the_committed_runs() -> None:
    """docs/results.md and the README's verdicts are exactly what the report writes from the
    runs: no figure by hand."""
    selected = load_runs(CAMPAIGN_ROOT, exclude=CAMPAIGN_ROOT / "report")
    last = load_runs(CAMPAIGN_ROOT, exclude=CAMPAIGN_ROOT / "report", figures="last")
    page = results_page(selected, last, RESULTS_COMMAND)
    assert RESULTS_PAGE.read_text() == page
    assert headline(Campaign(selected, last)) in (REPO_ROOT / "README.md").read_text()
