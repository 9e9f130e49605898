"""Parallel and cluster launchers: joblib and submitit (local executor) complete a sweep."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import read_write

from imbloss.multirun.devices import job_devices, job_threads

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


@pytest.mark.parametrize(
    ("mode", "launcher", "n_jobs", "cores", "expected"),
    [
        (RunMode.MULTIRUN, "joblib", 2, 2, 1),  # the campaign's layout: 2 jobs x 1 thread
        (RunMode.MULTIRUN, "joblib", 3, 8, 2),  # cores // n_jobs
        (RunMode.MULTIRUN, "joblib", 16, 8, 1),  # more jobs than cores: one thread each
        (RunMode.MULTIRUN, "joblib", -1, 8, 1),  # joblib's -1: a job per core
        (RunMode.MULTIRUN, "joblib", -2, 8, 1),  # -2: 7 jobs on 8 cores
        (RunMode.MULTIRUN, "joblib", -4, 8, 1),  # -4: 5 jobs
        (RunMode.MULTIRUN, "joblib", -7, 8, 4),  # -7: 2 jobs
        (RunMode.MULTIRUN, "basic", 2, 8, None),  # one job at a time: PyTorch's default
        (RunMode.RUN, "joblib", 2, 8, None),  # one run
    ],
)
def test_job_threads_share_the_cores_between_parallel_jobs(
    compose_train_cfg, mode: RunMode, launcher: str, n_jobs: int, cores: int, expected: object
) -> None:
    cfg = compose_train_cfg(f"hydra/launcher={launcher}")
    with read_write(cfg.hydra):
        cfg.hydra.mode = mode
        if launcher == "joblib":
            cfg.hydra.launcher.n_jobs = n_jobs
    HydraConfig.instance().set_config(cfg)
    assert job_threads(cores=cores) == expected


def test_threads_are_checked_and_applied(compose_train_cfg, tmp_path: Path) -> None:
    from imbloss.errors import ConfigError
    from imbloss.pipeline import train

    cfg = compose_train_cfg(*FAST_OVERRIDES, "threads=0")
    with pytest.raises(ConfigError, match=r"threads=0 is not a thread count; accepted: an integer"):
        train(cfg)
    assert not (tmp_path / "run" / "metrics.json").exists()
    cfg = compose_train_cfg(*FAST_OVERRIDES, "threads=1", "+trainer.limit_train_batches=1")
    previous = torch.get_num_threads()
    try:
        metrics = train(cfg)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(previous)
    assert (metrics["threads"], metrics["precision"]) == (1, "32-true")


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
    if "hydra/launcher=joblib" in launcher:  # each of 2 jobs side by side: its share of the cores
        cores = len(os.sched_getaffinity(0))
        assert [m["threads"] for m in metrics] == [max(1, cores // 2)] * 2
    assert "multirun of 2 jobs: 0 finished before (skipped), 0 resumed, 0 retried, 2 new" in (
        result.stdout
    )
