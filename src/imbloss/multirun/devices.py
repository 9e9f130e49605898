"""Which devices and CPU threads a job uses: parallel jobs of a multirun share the machine.

``trainer.devices: ${job_devices:1}`` (the default) asks for one device. Lightning would give every
job ``cuda:0``; when jobs of a multirun run side by side (``hydra/launcher=joblib``) on a machine
with G > 1 CUDA devices, job n gets device ``n mod G`` instead. Anything else (one run, one GPU or
none, more than one device asked for) passes the count through unchanged.
"""

from __future__ import annotations

import os

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

JOB_DEVICES_RESOLVER = "job_devices"
JOB_THREADS_RESOLVER = "job_threads"


def job_devices(count: int = 1, gpus: int | None = None) -> int | list[int]:
    """Resolver ``${job_devices:COUNT}``: ``COUNT``, or ``[job.num % G]`` as described above.

    ``gpus`` (G) defaults to ``torch.cuda.device_count()``.
    """
    gpus = torch.cuda.device_count() if gpus is None else gpus
    if count != 1 or gpus < 2 or not HydraConfig.initialized():
        return count
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return count
    return [int(hydra_cfg.job.num) % gpus]


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def job_threads(cores: int | None = None) -> int | None:
    """Resolver ``${job_threads:}``: the CPU threads of one job, or None for PyTorch's default.

    Under ``hydra/launcher=joblib`` with ``n_jobs`` = J processes side by side (J < 0 as joblib
    reads it: cores + 1 + J), each job gets ``max(1, cores // J)`` threads, so that the jobs do
    not oversubscribe the cores (PyTorch would give each of them every core). One run, or any
    other launcher, gets None: PyTorch's own default. ``cores`` defaults to
    :func:`available_cores`.
    """
    if not HydraConfig.initialized():
        return None
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN or "joblib" not in str(hydra_cfg.launcher._target_):
        return None
    cores = available_cores() if cores is None else cores
    n_jobs = int(hydra_cfg.launcher.n_jobs)
    parallel = n_jobs if n_jobs > 0 else cores + 1 + n_jobs
    return max(1, cores // min(max(parallel, 1), cores))
