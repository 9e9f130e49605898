"""A group of compatible jobs, from their composed configurations to every member's run folder.

The launcher first lets Hydra set up each job's folder (``.hydra/``) with :func:`capture_job` as
the task, then calls :func:`train_group`: one data load for the group, the group cut into passes
that fit in memory, each pass trained by :func:`~imbloss.stacked.engine.fit_stack`, and each
member's selected weights saved as an ordinary Lightning checkpoint of its
:class:`~imbloss.module.ImbalancedClassifier`, then its selected and last weights through the single
pipeline's own post-fit stage (:func:`imbloss.pipeline.evaluate_and_finish`, i.e.
:func:`imbloss.evaluation.evaluate_member`). Failures stay with their member: an invalid loss
configuration or a non-finite loss writes that member's ``error.json``; the others go on.

While a pass trains, its state (:mod:`imbloss.stacked.state`) is kept at the end of an epoch, at
most every ``save_every_s`` seconds, in ``<hydra.sweep.dir>/.stacked/<digest>.pt``; the digest is
over the pass's job folders and resolved task configurations, so only the same pass of the same
jobs loads it. A re-run of an interrupted pass continues from it (the members' CSV logs cut back
to its epoch); the file is removed once every member of the pass is evaluated.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import configure_log
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf

from imbloss.checks import check_run_config, run_epochs
from imbloss.data import ImbalancedDataModule
from imbloss.evaluation import FitResult
from imbloss.finite import NonFiniteRecord
from imbloss.loggers import finish_wandb
from imbloss.module import ImbalancedClassifier, NonFiniteLossError
from imbloss.multirun.progress import SKIPPED
from imbloss.pipeline import (
    build_datamodule,
    build_module,
    build_run_loggers,
    evaluate_and_finish,
    record_failure,
    report_job_end,
    route_lightning_logs_through_hydra,
    run_info,
    run_job,
)
from imbloss.runs.layout import STACKED_STATE_FILE, RunFolder
from imbloss.runs.lock import hold_run_folder
from imbloss.runs.readers import read_json_file
from imbloss.runs.resume import continued_after, start_job, trim_csv_log
from imbloss.stacked.engine import MemberOutcome, fit_stack
from imbloss.stacked.memory import plan_passes
from imbloss.stacked.state import (
    StackState,
    join_states,
    member_state,
    read_member_state,
    read_stack_state,
    write_member_state,
    write_stack_state,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MemberJob:
    """One job of the group: its task configuration and its whole configuration (with the
    ``hydra`` node, ``hydra.runtime.output_dir`` set by Hydra's ``run_job``)."""

    cfg: DictConfig
    config: DictConfig


def capture_job(task_cfg: DictConfig) -> DictConfig:
    """Task function for Hydra's ``run_job`` that only sets up the job's folder."""
    return task_cfg


@contextmanager
def job_context(job: MemberJob) -> Iterator[None]:
    """Make ``job`` Hydra's current job (output folder, its ``train.log``) for the block; after
    it, the log goes to Hydra's own handlers (the console) again."""
    saved = HydraConfig.instance().cfg
    HydraConfig.instance().set_config(job.config)
    configure_log(job.config.hydra.job_logging, job.config.hydra.verbose)
    try:
        yield
    finally:
        HydraConfig.instance().cfg = saved
        configure_log(job.config.hydra.hydra_logging, job.config.hydra.verbose)


@dataclass
class Member:
    """A member of a pass: its job, module (initial weights as the single run's), loggers, and
    the state a stacked pass that stopped it early left (``last_stacked.pt``), if it continues
    from one."""

    position: int
    job: MemberJob
    module: ImbalancedClassifier
    loggers: list[Logger]
    stacked_state: Path | None = None


def stack_device(accelerator: str) -> torch.device:
    """The device Lightning's ``accelerator`` setting would pick, for one process."""
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def vectorized(forward: str, device: torch.device) -> bool:
    """``forward``: ``vmap``, ``loop``, or ``auto`` — vmap on a GPU, the loop on the CPU (where
    grouped convolutions are slower than a member's own; ``benchmarks/bench_stacked.py``)."""
    return forward == "vmap" or (forward == "auto" and device.type == "cuda")


def train_group(
    jobs: list[MemberJob],
    max_stack: int | None,
    memory_fraction: float,
    forward: str = "auto",
    save_every_s: float = 600.0,
) -> list[dict[str, Any] | None]:
    """Train ``jobs`` (one group) in passes; each job's ``metrics.json`` content, or None.
    ``save_every_s``: least seconds between two saved states of a pass (0: every epoch). A pass
    holds its members' folders (:mod:`imbloss.runs.lock`): one that another process trains stops
    the launcher (FolderBusyError) before the pass starts."""
    route_lightning_logs_through_hydra()
    results: list[dict[str, Any] | None] = [None] * len(jobs)
    first = jobs[0].cfg
    if first.get("threads") is not None:  # the group's jobs share it (it is no member key)
        torch.set_num_threads(first.threads)
    try:
        with job_context(jobs[0]):
            datamodule = build_datamodule(first)
    except Exception as error:
        for job in jobs:
            with job_context(job):
                record_failure(error)
        return results
    device = stack_device(first.trainer.accelerator)
    vectorize = vectorized(forward, device)
    net = instantiate(first.model)(
        input_shape=datamodule.input_shape, num_classes=datamodule.num_classes
    )
    batch_shape = (datamodule.batch_size, *datamodule.input_shape)
    for done, cohort in _cohorts(jobs).items():
        plan = plan_passes(len(cohort), net, batch_shape, device, memory_fraction, max_stack)
        log.info(
            "stacked group of %d jobs%s on %s (%s): %s",
            len(cohort),
            "" if done is None else f" continuing after {done} epochs",
            device,
            "vmap" if vectorize else "loop over members",
            plan.describe(),
        )
        for part in plan.passes:
            positions = [cohort[i] for i in part]
            with ExitStack() as held:  # one process at a time in each member's folder
                for position in positions:
                    held.enter_context(hold_run_folder(_job_folder(jobs[position])))
                trained = _train_pass(jobs, positions, datamodule, device, vectorize, save_every_s)
            for position, metrics in trained.items():
                results[position] = metrics
    return results


def _cohorts(jobs: list[MemberJob]) -> dict[int | None, list[int]]:
    """The jobs' positions by where they start: None for a job that starts afresh (or resumes,
    or is finished: the pass sorts that out), else the epochs after which a stacked pass stopped
    it (``last_stacked.pt``, continued now): only members stopped alike continue as one pass."""
    cohorts: dict[int | None, list[int]] = {}
    for position, job in enumerate(jobs):
        folder = RunFolder(_job_folder(job))
        done = None
        if folder.metrics.is_file() and folder.stacked_state.is_file():
            try:
                done = continued_after(read_json_file(folder.metrics), run_epochs(job.cfg))
            except Exception:  # reported by the member's own start (start_job)
                done = None
        cohorts.setdefault(done, []).append(position)
    return cohorts


def state_path(jobs: list[MemberJob], positions: list[int]) -> Path:
    """Where the pass of ``jobs`` at ``positions`` keeps its training state: a file under the
    sweep folder named after the digest of its job folders and resolved task configurations."""
    digest = hashlib.sha256()
    for position in positions:
        job = jobs[position]
        with job_context(job):  # ${hydra:...} interpolations resolve to this job's values
            task = OmegaConf.to_container(job.cfg, resolve=True)
        folder = str(job.config.hydra.runtime.output_dir)
        digest.update(json.dumps([folder, task], sort_keys=True, default=str).encode())
    return Path(str(jobs[0].config.hydra.sweep.dir)) / ".stacked" / f"{digest.hexdigest()}.pt"


def _build_members(
    jobs: list[MemberJob],
    positions: list[int],
    datamodule: ImbalancedDataModule,
    results: dict[int, dict[str, Any] | None],
    resumed_pass: bool = False,
) -> list[Member]:
    """Each member as the single pipeline builds it (seed, then network); failures recorded.

    A job folder that holds a finished run is not retrained (its ``metrics.json`` goes into
    ``results``); one that can resume from ``last.ckpt`` resumes alone, in the single pipeline.
    ``resumed_pass``: the pass resumes from a state it saved
    (:func:`~imbloss.runs.resume.start_job`).
    """
    members = []
    for position in positions:
        job = jobs[position]
        with job_context(job):
            try:
                check_run_config(job.cfg)
                folder = Path(HydraConfig.get().runtime.output_dir)
                start = start_job(folder, job.cfg, stacked=True, resumed_pass=resumed_pass)
                if start.finished_metrics is not None:
                    report_job_end(SKIPPED)
                    results[position] = start.finished_metrics
                    continue
                if start.checkpoint is not None:
                    results[position] = run_job(job.cfg)
                    continue
                L.seed_everything(job.cfg.seed, workers=True, verbose=False)
                module = build_module(job.cfg, datamodule)
                loggers = build_run_loggers(job.cfg)
                for logger in loggers:
                    logger.log_hyperparams(OmegaConf.to_container(job.cfg, resolve=True))
            except Exception as error:
                record_failure(error)
                continue
        members.append(Member(position, job, module, loggers, start.stacked_state))
    return members


def _resume_state(
    path: Path, saved: tuple[list[int], StackState], members: list[Member]
) -> StackState | None:
    """The pass state ``saved`` (read from ``path``: member positions, state) if it is that of
    ``members`` (logged); else None, with the members' CSV logs emptied (some members of the
    interrupted pass finished meanwhile: the others start afresh, or continue)."""
    positions, state = saved
    if positions == [m.position for m in members]:
        log.info(
            "resuming stacked pass of %d members at epoch %d (%d epochs done) from %s",
            len(members),
            state.epochs_done + 1,
            state.epochs_done,
            path,
        )
        return state
    log.info("%s holds the state of other members: the pass does not resume from it", path)
    return None


def _folder(member: Member) -> RunFolder:
    return RunFolder(_job_folder(member.job))


def _continued_state(members: list[Member]) -> StackState | None:
    """The pass's state put together from its members' ``last_stacked.pt`` (a pass of members a
    stacked pass stopped early); None for a pass that starts afresh. A ValueError if only some
    members continue or they stopped after different epochs."""
    sources = [m.stacked_state for m in members]
    if all(source is None for source in sources):
        return None
    if any(source is None for source in sources):
        raise ValueError("a stacked pass mixes members that continue with members that start")
    state = join_states([read_member_state(source) for source in sources])  # type: ignore[arg-type]
    log.info(
        "continuing a stacked pass of %d members after %d epochs from their %s",
        len(members),
        state.epochs_done,
        STACKED_STATE_FILE,
    )
    return state


def _job_folder(job: MemberJob) -> Path:
    return Path(str(job.config.hydra.runtime.output_dir))


def _train_pass(
    jobs: list[MemberJob],
    positions: list[int],
    datamodule: ImbalancedDataModule,
    device: torch.device,
    vectorize: bool,
    save_every_s: float,
) -> dict[int, dict[str, Any] | None]:
    results: dict[int, dict[str, Any] | None] = {}
    path = state_path(jobs, positions)
    saved = read_stack_state(path) if path.is_file() else None
    members = _build_members(jobs, positions, datamodule, results, resumed_pass=saved is not None)
    if not members:
        return results
    cfg = members[0].job.cfg
    epochs = run_epochs(cfg)  # stop_at_epoch (a halving rung) stops the pass early
    stopped = epochs < cfg.trainer.max_epochs
    try:
        resume_from = None if saved is None else _resume_state(path, saved, members)
        if resume_from is None:
            resume_from = _continued_state(members)
    except Exception as error:
        for member in members:
            with job_context(member.job):
                record_failure(error)
        return results
    for member in members:  # what was logged after the state the pass starts from is logged again
        trim_csv_log(_folder(member).curves, 0 if resume_from is None else resume_from.epochs_done)
    previous_s = 0.0 if resume_from is None else resume_from.fit_time_s
    member_positions = [m.position for m in members]
    final: list[StackState] = []
    if resume_from is not None and resume_from.epochs_done == epochs:
        final.append(resume_from)  # interrupted after its last epoch, before its members' files

    def on_state(state: StackState) -> None:
        write_stack_state(path, state, member_positions)
        if state.epochs_done == epochs:  # the state the stopped members continue from
            final.append(state)

    def on_epoch_end(epoch: int, step: int, figures: dict[int, dict[str, float]]) -> None:
        for k, values in figures.items():
            train = {"train/loss": values.pop("train/loss"), "lr": values.pop("lr"), "epoch": epoch}
            for logger in members[k].loggers:
                logger.log_metrics({**values, "epoch": epoch}, step=step - 1)
                logger.log_metrics(train, step=step - 1)
                logger.save()

    def on_failure(k: int, record: NonFiniteRecord) -> None:
        with job_context(members[k].job):
            record_failure(NonFiniteLossError(record.message()))
            finish_wandb(members[k].loggers, exit_code=1)

    started = time.perf_counter()
    try:
        outcomes, steps = fit_stack(
            [m.module for m in members],
            [m.job.cfg.seed for m in members],
            datamodule,
            max_epochs=epochs,
            device=device,
            limit_train_batches=cfg.trainer.get("limit_train_batches", 1.0),
            vectorize=vectorize,
            on_epoch_end=on_epoch_end,
            on_failure=on_failure,
            resume_from=resume_from,
            on_state=on_state,
            save_every_s=save_every_s,
            precision=str(cfg.trainer.get("precision", "32-true")),
            final_state=stopped,
        )
    except Exception as error:  # the pass fails, every member with it; the sweep goes on
        for member in members:
            with job_context(member.job):
                record_failure(error)
                finish_wandb(member.loggers, exit_code=1)
        return results
    stack_fit_time_s = previous_s + time.perf_counter() - started
    for k, (member, outcome) in enumerate(zip(members, outcomes, strict=True)):
        if outcome.failure is not None:
            continue
        if stopped:  # a later stacked pass continues it from its slice of the final state
            write_member_state(_folder(member).stacked_state, member_state(final[-1], k))
        fit = FitResult(
            selected_state=outcome.best_state,
            last_state=outcome.last_state,
            selected_epoch=outcome.best_epoch + 1,
            epochs=epochs,
            fit_time_s=stack_fit_time_s / len(members),
            batch_stats=outcome.batch_stats,
            val_figures={"selected": outcome.best_val, "last": outcome.last_val},
        )
        with job_context(member.job):
            try:
                checkpoint = _save_checkpoint(member, outcome, steps, epochs, stopped)
                info = run_info(
                    member.job.cfg,
                    str(checkpoint),
                    "stacked",
                    len(members),
                    stack_fit_time_s,
                    epochs,
                )
                net = member.module.net.to(device)
                results[member.position] = evaluate_and_finish(
                    net, datamodule, fit, info, member.job.cfg, member.loggers, device
                )
            except Exception as error:
                record_failure(error)
    _remove_state(path)
    return results


def _remove_state(path: Path) -> None:
    """Remove a pass's state file, and its folder once no other pass's state is left in it."""
    path.unlink(missing_ok=True)
    if path.parent.is_dir() and not any(path.parent.iterdir()):
        path.parent.rmdir()


def _save_checkpoint(
    member: Member, outcome: MemberOutcome, steps: int, epochs: int, stopped: bool
) -> Path:
    """The member's selected weights as the Lightning checkpoint its checkpoint callback would
    have written (weights only; epoch and global step those of the selected epoch), and its last
    weights after ``epochs`` where a callback without a monitor (``last_checkpoint``) is
    configured — not for a member stopped early (``stopped``): a weights-only ``last.ckpt`` could
    not be continued from, its ``last_stacked.pt`` is. Returns the selected checkpoint's path."""
    cfg, module = member.job.cfg, member.module
    callbacks = list(instantiate(cfg.callbacks).values())
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=[], logger=False)
    trainer.strategy.connect(module)
    best = next(c for c in callbacks if c.monitor is not None)
    path = _checkpoint_path(best, outcome)
    module.net.load_state_dict(outcome.best_state)
    _place_trainer(trainer, epoch=outcome.best_epoch, steps=outcome.best_step)
    trainer.save_checkpoint(path, weights_only=True)
    for last in (c for c in callbacks if c.monitor is None and not stopped):
        module.net.load_state_dict(outcome.last_state)
        _place_trainer(trainer, epoch=epochs - 1, steps=steps)
        trainer.save_checkpoint(Path(last.dirpath) / f"{last.filename}.ckpt", weights_only=True)
    return path


def _checkpoint_path(checkpoint: ModelCheckpoint, outcome: MemberOutcome) -> Path:
    metrics = {
        "val/gmean": outcome.best_gmean,
        "epoch": torch.tensor(outcome.best_epoch),
        "step": torch.tensor(outcome.best_step),
    }
    return Path(checkpoint.dirpath) / Path(checkpoint.format_checkpoint_name(metrics)).name


def _place_trainer(trainer: L.Trainer, epoch: int, steps: int) -> None:
    """Set the epoch and step a fresh trainer writes into a checkpoint to those a Lightning fit
    would have reached (``epoch`` epochs and ``steps`` optimiser steps done)."""
    trainer.fit_loop.epoch_progress.current.completed = epoch
    epoch_loop = trainer.fit_loop.epoch_loop
    epoch_loop._batches_that_stepped = steps
    epoch_loop.automatic_optimization.optim_progress.optimizer.step.total.completed = steps
