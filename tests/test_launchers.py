"""Parallel and cluster launchers: joblib and submitit (local executor) complete a sweep."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import read_write

from imbloss.devices import job_devices

from conftest import FAST_OVERRIDES

Runner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.mark.parametrize(
    ("mode", "job", "count", "gpus", "expected"),
    [
        (RunMode.MULTIRUN, 5, 1, 4, [1]),  # job 5 of a sweep on 4 GPUs: its own device
        (RunMode.MULTIRUN, 5, 1, 1, 1),  # one GPU: nothing to spread
        (RunMode.MULTIRUN, 5, 1, 0, 1),  # CPU
        (RunMode.MULTIRUN, 5, 2, 4, 2),  # several devices asked for (DDP): passed through
        (RunMode.RUN, 5, 1, 4, 1),  # one run: Lightning's choice
    ],
)
def test_job_devices_spread_parallel_jobs_over_the_gpus(
    compose_train_cfg, mode: RunMode, job: int, count: int, gpus: int, expected: object
) -> None:
    cfg = compose_train_cfg()
    with read_write(cfg.hydra):
        cfg.hydra.mode = mode
        cfg.hydra.job.num = job
    HydraConfig.instance().set_config(cfg)
    assert job_devices(count, gpus=gpus) == expected


@pytest.mark.slow
@pytest.mark.parametrize(
    "launcher",
    [["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], ["hydra/launcher=submitit_local"]],
)
def test_launcher_completes_a_synthetic_sweep(
    run_cli: Runner, tmp_path: Path, launcher: list[str]
) -> None:
    sweep = tmp_path / "sweep"
    result = run_cli(["-m", *FAST_OVERRIDES, "loss=ce,pf", *launcher, f"hydra.sweep.dir={sweep}"])
    assert result.returncode == 0, result.stderr
    metrics = [json.loads((sweep / str(n) / "metrics.json").read_text()) for n in range(2)]
    assert [(m["status"], m["loss"], m["epochs"]) for m in metrics] == [
        ("ok", "ce", 1),
        ("ok", "pf", 1),
    ]
    assert "multirun of 2 jobs: 0 finished before (skipped), 0 resumed, 0 retried, 2 new" in (
        result.stdout
    )
