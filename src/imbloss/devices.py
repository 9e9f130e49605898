"""Which accelerator devices a job uses: parallel jobs of a multirun spread over the GPUs.

``trainer.devices: ${job_devices:1}`` (the default) asks for one device. Lightning would give every
job ``cuda:0``; when jobs of a multirun run side by side (``hydra/launcher=joblib``) on a machine
with G > 1 CUDA devices, job n gets device ``n mod G`` instead. Anything else (one run, one GPU or
none, more than one device asked for) passes the count through unchanged.
"""

from __future__ import annotations

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

JOB_DEVICES_RESOLVER = "job_devices"


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
