"""Resumable runs: atomic checkpoints, the state a resumed run needs, and how a job starts.

Every epoch leaves ``checkpoints/last.ckpt`` (the ``last_checkpoint`` callback of
``conf/callbacks/default.yaml``), written by :class:`AtomicCheckpointIO` through a temporary file
in the same folder and one rename, so a kill while writing leaves the previous checkpoint whole.
Lightning's checkpoint already holds the weights, the optimiser, the loops' progress and the
checkpoint callback's best score and path (the selection survives); :class:`RunState` adds the
random generators' states (dropout draws the same numbers after a resume) and the fit time spent
before. The batch order is a function of the
training seed and the epoch (:mod:`imbloss.data.batches`), and the loss's epoch hook is called
again at the start of every epoch, so a resumed run is the run that was never interrupted.
:class:`ResumableCSVLogger` continues the run's ``csv/metrics.csv`` (cut back to the resumed
epoch by :func:`trim_csv_log`), and :func:`start_job` decides, per job folder, what to do.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from imbloss.checks import run_epochs
from imbloss.errors import RunFileError
from imbloss.runs.folder import (
    FolderState,
    claim_folder,
    clear_attempt,
    folder_state,
    restore_hydra_files,
)
from imbloss.runs.layout import LAST_CHECKPOINT_FILE, METRICS_FILE, STACKED_STATE_FILE, RunFolder
from imbloss.runs.outputs import atomic_file
from imbloss.runs.readers import read_checkpoint, read_json_file

log = logging.getLogger(__name__)


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` into a temporary file beside the target, then one ``os.replace``."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        with atomic_file(Path(path)) as handle:
            torch.save(checkpoint, handle)


def rng_state() -> dict[str, Any]:
    """The CPU random generator's state (``torch``), and the CUDA ones' (``cuda``) where CUDA is
    initialised."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Put back the generators' states of :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class RunState(L.Callback):
    """Saves and restores the CPU (and CUDA) random generators and the fit time spent so far (the
    module keeps its own training-batch counters in the checkpoint).

    ``fit_time_s`` after ``fit`` = the time of this fit + the time before the checkpoint it
    resumed from.
    """

    def __init__(self) -> None:
        self.previous_fit_time_s = 0.0
        self._started: float | None = None
        self.fit_time_s = 0.0

    def _elapsed(self) -> float:
        started = time.perf_counter() if self._started is None else self._started
        return self.previous_fit_time_s + time.perf_counter() - started

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.perf_counter()

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.fit_time_s = self._elapsed()

    def state_dict(self) -> dict[str, Any]:
        return {**rng_state(), "fit_time_s": self._elapsed()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        set_rng_state(state_dict)
        self.previous_fit_time_s = float(state_dict["fit_time_s"])


class _AppendingWriter(ExperimentWriter):
    """Keeps an existing ``metrics.csv`` (its rows and columns) and appends to it."""

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as handle:
                self.metrics_keys = list(csv.DictReader(handle).fieldnames or [])


class ResumableCSVLogger(CSVLogger):
    """Lightning's CSVLogger, appending to the run's ``metrics.csv`` where Lightning's deletes it:
    a resumed run continues its curves (a fresh attempt's folder is cleared before it starts)."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment


def trim_csv_log(path: Path, epochs_done: int) -> None:
    """Drop the rows of epochs ``>= epochs_done`` from a CSV log: what a killed run logged after
    the checkpoint it resumes from is logged again by the resumed run."""
    if not path.is_file():
        return
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        rows = [row for row in reader if row.get("epoch") and int(row["epoch"]) < epochs_done]
        fields = reader.fieldnames or []
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_file(path) as handle:
        handle.write(text.getvalue().encode())


def continued_after(metrics: dict[str, Any], epochs: int) -> int | None:
    """The epochs after which the finished run of ``metrics`` stopped early
    (``stopped_at_epoch``), if it is to continue now to ``epochs``; None if it does not."""
    stopped = metrics.get("stopped_at_epoch")
    return None if stopped is None or stopped >= epochs else int(stopped)


def _continuation(folder: Path, metrics: dict[str, Any], epochs: int, stacked: bool) -> Path | None:
    """What the finished run in ``folder`` (its ``metrics``) continues from, if it stopped early
    (``stopped_at_epoch``) before the ``epochs`` asked for now: its ``last.ckpt``, or, in a
    stacked pass (``stacked``), the ``last_stacked.pt`` a stacked pass left; None if it does not
    continue. A RunFileError if the file it needs is gone: it is never retrained from the start.
    """
    stopped = continued_after(metrics, epochs)
    if stopped is None:
        return None
    files = RunFolder(folder)
    if files.last_checkpoint.is_file():
        source = files.last_checkpoint
    elif files.stacked_state.is_file():
        if not stacked:
            raise RunFileError(
                f"{folder} holds a member a stacked pass stopped at epoch {stopped}: only a "
                f"stacked pass continues it from its {STACKED_STATE_FILE} (hydra/launcher="
                "stacked); or remove the folder to train it afresh"
            )
        source = files.stacked_state
    else:
        raise RunFileError(
            f"{folder} holds a run stopped at epoch {stopped}, to be continued to epoch "
            f"{epochs}, but its {LAST_CHECKPOINT_FILE} is gone; remove the folder to train it "
            "afresh"
        )
    log.info("%s stopped at epoch %d: continuing to epoch %d", folder, stopped, epochs)
    return source


@dataclass(frozen=True)
class JobStart:
    """How a job begins in its folder: its state, the checkpoint to resume, a stacked member's
    state to continue in a stacked pass, finished figures."""

    state: FolderState
    checkpoint: Path | None = None
    finished_metrics: dict[str, Any] | None = None
    stacked_state: Path | None = None


def start_job(
    folder: Path, cfg: DictConfig, stacked: bool = False, resumed_pass: bool = False
) -> JobStart:
    """Claim ``folder`` for ``cfg`` and prepare it: skip, resume, or start afresh (logged).

    ``stacked``: the job is a member of a stacked pass, which continues a member a stacked pass
    stopped early (``last_stacked.pt``); the pass cuts its CSV log back to the epochs it
    continues from. ``resumed_pass``: the stacked pass resumes from a pass state it saved;
    unless finished or resumable on its own, the folder keeps its CSV log (the pass cuts it back)
    and loses its ``error.json`` (a member that failed before is reported again from the pass
    state). Under
    data-parallel training the other processes, started by the first one after it prepared the
    folder, only read where to resume from.
    """
    files = RunFolder(folder)
    if rank_zero_only.rank != 0:
        if folder_state(folder) is FolderState.RESUMABLE:
            return JobStart(FolderState.RESUMABLE, files.last_checkpoint)
        return JobStart(FolderState.NEW)
    state = claim_folder(folder, OmegaConf.to_container(cfg, resolve=False))
    if state is FolderState.FINISHED:
        metrics = read_json_file(files.metrics)
        source = _continuation(folder, metrics, run_epochs(cfg), stacked)
        if source is None:
            log.info("%s holds a finished run (%s): not retrained", folder, METRICS_FILE)
            restore_hydra_files(folder)  # Hydra rewrote them for this job, which trains nothing
            return JobStart(state, finished_metrics=metrics)
        if source == files.stacked_state:
            return JobStart(FolderState.RESUMABLE, stacked_state=source)
        state = FolderState.RESUMABLE
    if state is FolderState.RESUMABLE:
        checkpoint = files.last_checkpoint
        epochs_done = int(read_checkpoint(checkpoint)["epoch"]) + 1
        log.info("resuming from %s (%d epochs done)", checkpoint, epochs_done)
        trim_csv_log(files.curves, epochs_done)
        return JobStart(state, checkpoint=checkpoint)
    if resumed_pass:
        files.error.unlink(missing_ok=True)
        return JobStart(state)
    if state is FolderState.FAILED:
        log.info("%s holds a failed attempt: retrying from the start", folder)
    clear_attempt(folder)
    return JobStart(state)
