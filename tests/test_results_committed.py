"""The committed results (every campaign's folder under results/): complete, consistent with
the job its campaign file planned, every headline figure recomputed from its predictions, and
each campaign's page and the README's verdicts rebuilt from them."""

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
from imbloss.report.runs import find_run_dirs
from imbloss.results.config import CampaignConfig, job_dirname, load_campaign
from imbloss.results.page import write_campaign_page
from imbloss.runs.layout import CURVES_FILE, RunFolder
from imbloss.runs.readers import COMPACT_POSITIONS_KEY, read_predictions

from conftest import REPO_ROOT

# the campaigns with committed runs
CAMPAIGNS = ("fmnist", "fmnist_one_subsample")
# A committed run stays under this many bytes (configuration, curves, compact predictions, log;
# about 410 KB for a Fashion-MNIST run, 360 KB of it the two float16 log-probability arrays).
RUN_BYTES_LIMIT = 500_000
# float16 probabilities: a near-tie may change one predicted class in a thousand.
FIGURE_TOLERANCE = 2e-3


def _campaign(name: str) -> CampaignConfig:
    return load_campaign(name, REPO_ROOT)


def finished_runs() -> list[tuple[str, Path]]:
    found = []
    for name in CAMPAIGNS:
        root = _campaign(name).root(REPO_ROOT)
        if root.is_dir():
            found += [(name, d) for d in find_run_dirs(root) if RunFolder(d).metrics.is_file()]
    return found


def _tracked(folder: str) -> list[str] | None:
    """Files git tracks below ``folder`` (None without git)."""
    if shutil.which("git") is None or not (REPO_ROOT / ".git").exists():
        return None
    listed = subprocess.run(
        ["git", "ls-files", "--", folder],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return listed.stdout.splitlines()


def test_the_campaigns_have_finished_runs() -> None:
    assert finished_runs(), "no finished run under results/"


@pytest.mark.parametrize("name", CAMPAIGNS)
def test_no_checkpoint_and_no_unfinished_run_is_committed(name: str) -> None:
    campaign = _campaign(name)
    tracked = _tracked(campaign.dir)
    if tracked is None:
        pytest.skip("not a git checkout")
    assert not [path for path in tracked if path.endswith(".ckpt")]
    depth = len(Path(campaign.dir).parts)
    folders = {Path(p).parts[depth] for p in tracked if len(Path(p).parts) > depth + 1}
    root = campaign.root(REPO_ROOT)
    unfinished = [f for f in folders if not (root / f / "metrics.json").is_file()]
    assert not unfinished, f"committed run folders without metrics.json: {unfinished}"


@pytest.mark.parametrize(
    ("name", "run_dir"), finished_runs(), ids=lambda value: getattr(value, "name", value)
)
def test_committed_run_is_complete_and_consistent(name: str, run_dir: Path) -> None:
    campaign = _campaign(name)
    folder = RunFolder(run_dir)
    for path in (folder.config, run_dir / ".hydra" / "overrides.yaml", folder.curves):
        assert path.is_file(), f"{path} is missing"
    assert (run_dir / CURVES_FILE).stat().st_size > 0
    size = sum(
        p.stat().st_size for p in run_dir.rglob("*") if p.is_file() and "checkpoints" not in p.parts
    )
    assert size < RUN_BYTES_LIMIT, f"{run_dir.name}: {size} bytes"
    # the folder is a job its campaign planned, and its configuration is that job's
    planned = {job_dirname(j): j for j in campaign.jobs()}
    assert run_dir.name in planned, f"{run_dir.name} is no job of campaign {name}"
    job = campaign.full_overrides(planned[run_dir.name])
    metrics = json.loads(folder.metrics.read_text())
    config = yaml.safe_load(folder.config.read_text())
    assert metrics["status"] == "ok"
    assert metrics["loss"] == config["loss"]["name"] == job["loss"]
    assert metrics["seed"] == config["seed"] == int(job["seed"])
    assert config["dataset"]["seed"] == int(job.get("dataset.seed", 0))
    assert metrics["ir"] == config["ir"] == (None if job["ir"] == "null" else float(job["ir"]))
    assert metrics["precision"] == config["trainer"]["precision"] == job["trainer.precision"]
    assert metrics["epochs"] == config["trainer"]["max_epochs"] == int(job["trainer.max_epochs"])
    assert metrics["threads"] == config["threads"] == 1
    if "environment" in metrics:  # runs made since it is recorded
        assert metrics["environment"]["threads"] == 1 and metrics["environment"]["device"]

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


@pytest.mark.parametrize("name", CAMPAIGNS)
def test_the_campaign_page_is_rebuilt_from_the_committed_runs(name: str, tmp_path: Path) -> None:
    """Each campaign's page, and the README's verdicts, are exactly what ``python -m
    imbloss.results page`` writes from the runs: no figure by hand."""
    campaign = _campaign(name)
    readme = tmp_path / "README.md"
    shutil.copyfile(REPO_ROOT / "README.md", readme)
    out = tmp_path / Path(campaign.page).name
    command = f"python -m imbloss.results page --campaign {name} --out {campaign.page}"
    if name == "fmnist":
        command += " --readme README.md"
    write_campaign_page(campaign, campaign.root(REPO_ROOT), out, REPO_ROOT, str(readme), command)
    assert out.read_text() == (REPO_ROOT / campaign.page).read_text()
    if name == "fmnist":  # the default campaign writes the README's headline
        assert readme.read_text() == (REPO_ROOT / "README.md").read_text()
