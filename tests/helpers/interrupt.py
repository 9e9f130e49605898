"""A Lightning callback that kills its own process with SIGKILL: a real interruption."""

from __future__ import annotations

import os
import signal

import lightning as L
from hydra.core.hydra_config import HydraConfig


class KillAfterEpoch(L.Callback):
    """SIGKILLs the process when training reaches epoch ``epoch + 1`` (0-based), i.e. after epoch
    ``epoch`` and its checkpoints were written; with ``job``, only in that multirun job.

    A run resumed at that epoch is not killed again (the kill needs an epoch trained before it).
    """

    def __init__(self, epoch: int, job: int | None = None) -> None:
        self.epoch = epoch
        self.job = job
        self._first_epoch: int | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._first_epoch = trainer.current_epoch

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        this_job = self.job is None or HydraConfig.get().job.num == self.job
        if this_job and trainer.current_epoch == self.epoch + 1 != self._first_epoch:
            os.kill(os.getpid(), signal.SIGKILL)
