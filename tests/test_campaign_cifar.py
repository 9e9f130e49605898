"""The CIFAR campaign (``campaigns/cifar.yaml``) end to end through the real command line.

``python -m imbloss.results run --campaign cifar`` trains one of its stages at one replicate and
one epoch on small files in the CIFAR on-disk format (:mod:`helpers.cifar`), CPU only; the test
checks the exact folders written (:func:`imbloss.results.config.job_dirname`), what each run
recorded, and that ``status`` counts them; ``page`` writes the claims page from the same
folder. The binary stages (60 jobs) run under ``-m slow``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
import yaml

from imbloss.results.config import job_dirname, load_campaign
from imbloss.runs.environment import bf16_isa

from conftest import REPO_ROOT, cli_env
from helpers.cifar import write_fake_cifar10, write_fake_cifar100

CAMPAIGN = load_campaign("cifar", REPO_ROOT)
TABLE_V_LOSSES = ("pf", "wce", "focal", "focal_alpha", "ldam", "wldam", "ce", "bsm")
BINARY_LOSSES = ("pf", "wce", "focal", "focal_alpha", "ldam", "wldam")

# After `--`: every job, out of the folder names. One epoch, CPU, one thread, small batches, and
# no checkpoint kept: tiny and quick.
TINY = (
    "trainer.max_epochs=1",
    "dataset.verify=false",
    "dataset.download=false",
    "trainer.accelerator=cpu",
    "threads=1",
    "dataset.batch_size=32",
    "dataset.eval_batch_size=256",
    "checkpoints=none",
)
# The ResNet-18 stages train in bf16-mixed, which the CLI refuses on a CPU that only emulates it.
BF16 = () if torch.cuda.is_available() or bf16_isa() else ("--allow-emulated-bf16",)
STATUS_LINE = re.compile(r"^(\S+)\s+(\d+) finished,\s+(\d+) failed,\s+(\d+) to run$")


def _results(root: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    """``python -m imbloss.results ARGS`` from the repository root, logs and data below ``root``."""
    return subprocess.run(
        [sys.executable, "-m", "imbloss.results", *args],
        cwd=REPO_ROOT,
        env=cli_env(root, IMBLOSS_ROOT=str(REPO_ROOT)),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _run_stages(root: Path, stages: Sequence[str]) -> Path:
    """Write the small CIFAR files below ``root/data``, run ``stages`` at replicate 0 into
    ``root/runs`` and return that folder."""
    data = root / "data"
    # step at IR=10 keeps 2 of an even class's 20 training images (1 trains, 1 validates)
    write_fake_cifar10(data, per_class_train=20, per_class_test=10)
    write_fake_cifar100(data, per_class_train=5, per_class_test=2)
    folder = root / "runs"
    done = _results(
        root,
        "run",
        "--campaign",
        "cifar",
        "--dir",
        str(folder),
        "--replicates",
        "1",
        *BF16,
        *stages,
        "--",
        *TINY,
        f"paths.data_dir={data}",
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return folder


def _job_folders(folder: Path) -> set[str]:
    """The run folders in ``folder`` (not the runner's own ``.imbloss`` state)."""
    return {p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")}


def _status(root: Path, folder: Path) -> dict[str, tuple[int, int, int]]:
    """``status`` per stage: (finished, failed, to run)."""
    done = _results(root, "status", "--campaign", "cifar", "--dir", str(folder), timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    *lines, estimate = done.stdout.splitlines()
    # the campaign's job_config trains one job at a time (replicates_gpu)
    assert estimate.startswith("About ") and ", one job at a time, " in estimate, estimate
    counts = {}
    for line in lines:
        match = STATUS_LINE.match(line.strip())
        assert match, f"unexpected status line {line!r}"
        counts[match[1]] = (int(match[2]), int(match[3]), int(match[4]))
    return counts


def _expected_status(ran: dict[str, int]) -> dict[str, tuple[int, int, int]]:
    """Every stage at 5 replicates, with ``ran[stage]`` of its jobs finished."""
    counts = {}
    for stage in CAMPAIGN.stages:
        finished = ran.get(stage.name, 0)
        counts[stage.name] = (finished, 0, len(CAMPAIGN.stage_jobs(stage)) - finished)
    return counts


def _recorded(run: Path) -> tuple[dict, dict]:
    """A finished run's metrics.json and its resolved config."""
    metrics = json.loads((run / "metrics.json").read_text())
    config = yaml.safe_load((run / ".hydra" / "config.yaml").read_text())
    return metrics, config


def test_the_campaign_plans_its_stages() -> None:
    """The file's stages and their job counts at 5 replicates."""
    assert [(s.name, len(CAMPAIGN.stage_jobs(s))) for s in CAMPAIGN.stages] == [
        ("ir100", 40),
        ("ir50", 40),
        ("ir10", 40),
        ("binary_c100", 150),
        ("binary_c10", 150),
    ]
    assert len(CAMPAIGN.jobs()) == 420
    assert CAMPAIGN.job_config == "replicates_gpu"
    assert CAMPAIGN.fixed == {
        "experiment": "cifar10_step",
        "trainer.max_epochs": "200",
        "trainer.precision": "bf16-mixed",
    }


# --- stage ir10 at one epoch: the real CLI ----------------------------------------------------


@pytest.fixture(scope="module")
def ir10_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Stage ir10 (Table V, ResNet-18, bf16-mixed), replicate 0, trained once for this module:
    (the test's root, the campaign folder)."""
    root = tmp_path_factory.mktemp("cifar_campaign")
    return root, _run_stages(root, ["ir10"])


def test_stage_ir10_runs_end_to_end(ir10_runs: tuple[Path, Path]) -> None:
    root, folder = ir10_runs
    expected = {f"ir=10,loss={loss},seed=0" for loss in TABLE_V_LOSSES}
    assert expected == {job_dirname(j) for j in CAMPAIGN.stage_jobs(CAMPAIGN.stage("ir10"), 1)}
    assert _job_folders(folder) == expected
    for loss in TABLE_V_LOSSES:
        metrics, config = _recorded(folder / f"ir=10,loss={loss},seed=0")
        assert metrics["status"] == "ok"
        assert (metrics["loss"], metrics["seed"], metrics["data_seed"]) == (loss, 0, 0)
        assert (metrics["dataset"], metrics["protocol"], metrics["ir"]) == ("cifar10", "step", 10.0)
        assert (metrics["model"], metrics["precision"], metrics["epochs"]) == (
            "CifarResNet18",
            "bf16-mixed",
            1,
        )
        assert config["experiment"]["name"] == "cifar10_step"  # the campaign's fixed preset
        assert config["trainer"]["max_epochs"] == 1  # the override after `--`
    assert _status(root, folder) == _expected_status({"ir10": 8})


# --- the claims page ---------------------------------------------------------------------------


def test_page_of_the_ir10_runs_names_the_campaign(ir10_runs: tuple[Path, Path]) -> None:
    root, folder = ir10_runs
    page = root / "results-cifar.md"
    done = _results(
        root, "page", "--campaign", "cifar", "--dir", str(folder), "--out", str(page), timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    text = page.read_text()
    assert text.startswith(f"# Results: {CAMPAIGN.title}")
    assert "| `ir10` " in text and "| 8 of 40" in text  # the stage's progress
    assert "ir=10,loss=pf,seed=1" in text  # replicate 1 is still missing


# --- the binary stages (Tables II and III): 60 jobs, about 2 minutes on 2 cores -----------------


@pytest.mark.slow
def test_binary_stages_run_end_to_end(tmp_path: Path) -> None:
    folder = _run_stages(tmp_path, ["binary_c10", "binary_c100"])
    tables = {"cifar10_binary": (1, 3, 5, 7, 9), "cifar100_binary": (19, 39, 59, 79, 99)}
    expected = {
        f"dataset.minority_class={c},experiment={experiment},loss={loss},seed=0,"
        "trainer.precision=32-true": (experiment, c, loss)
        for experiment, classes in tables.items()
        for c in classes
        for loss in BINARY_LOSSES
    }
    planned = CAMPAIGN.stage_jobs(CAMPAIGN.stage("binary_c10"), 1) + CAMPAIGN.stage_jobs(
        CAMPAIGN.stage("binary_c100"), 1
    )
    assert set(expected) == {job_dirname(j) for j in planned}
    assert _job_folders(folder) == set(expected)
    for name, (experiment, minority_class, loss) in expected.items():
        metrics, config = _recorded(folder / name)
        assert metrics["status"] == "ok"
        assert (metrics["loss"], metrics["seed"], metrics["data_seed"]) == (loss, 0, 0)
        assert (metrics["protocol"], metrics["num_classes"], metrics["ir"]) == ("binary", 2, None)
        assert (metrics["precision"], metrics["epochs"]) == ("32-true", 1)
        assert config["experiment"]["name"] == experiment
        assert config["dataset"]["minority_class"] == minority_class
    assert _status(tmp_path, folder) == _expected_status({"binary_c10": 30, "binary_c100": 30})
