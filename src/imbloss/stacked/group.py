"""A group of compatible jobs, from their composed configurations to every member's run folder.

The launcher first lets Hydra set up each job's folder (``.hydra/``) with :func:`capture_job` as
the task, then calls :func:`train_group`: one data load for the group, the group cut into passes
that fit in memory, each pass trained by :func:`~imbloss.stacked.engine.fit_stack`, and each
member's selected weights saved as an ordinary Lightning checkpoint of its
:class:`~imbloss.module.ImbalancedClassifier`, then its selected and last weights through the single
pipeline's own post-fit stage (:func:`imbloss.pipeline.evaluate_and_finish`, i.e.
:func:`imbloss.evaluation.evaluate_member`). Failures stay with their member: an invalid loss
configuration or a non-finite loss writes that member's ``error.json``; the others go on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
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

from imbloss.checks import check_run_config
from imbloss.data import ImbalancedDataModule
from imbloss.evaluation import FitResult
from imbloss.finite import NonFiniteRecord
from imbloss.loggers import finish_wandb
from imbloss.module import ImbalancedClassifier, NonFiniteLossError
from imbloss.pipeline import (
    build_datamodule,
    build_module,
    build_run_loggers,
    evaluate_and_finish,
    record_failure,
    route_lightning_logs_through_hydra,
    run_info,
    run_job,
)
from imbloss.resume import start_job
from imbloss.stacked.engine import MemberOutcome, fit_stack
from imbloss.stacked.memory import plan_passes

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
    """A member of a pass: its job, module (initial weights as the single run's) and loggers."""

    position: int
    job: MemberJob
    module: ImbalancedClassifier
    loggers: list[Logger]


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
    jobs: list[MemberJob], max_stack: int | None, memory_fraction: float, forward: str = "auto"
) -> list[dict[str, Any] | None]:
    """Train ``jobs`` (one group) in passes; each job's ``metrics.json`` content, or None."""
    route_lightning_logs_through_hydra()
    results: list[dict[str, Any] | None] = [None] * len(jobs)
    first = jobs[0].cfg
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
    plan = plan_passes(len(jobs), net, batch_shape, device, memory_fraction, max_stack)
    log.info(
        "stacked group of %d jobs on %s (%s): %s",
        len(jobs),
        device,
        "vmap" if vectorize else "loop over members",
        plan.describe(),
    )
    for part in plan.passes:
        trained = _train_pass(jobs, list(part), datamodule, device, vectorize)
        for position, metrics in trained.items():
            results[position] = metrics
    return results


def _build_members(
    jobs: list[MemberJob],
    positions: list[int],
    datamodule: ImbalancedDataModule,
    results: dict[int, dict[str, Any] | None],
) -> list[Member]:
    """Each member as the single pipeline builds it (seed, then network); failures recorded.

    A job folder that holds a finished run is not retrained (its ``metrics.json`` goes into
    ``results``); one that can resume from ``last.ckpt`` resumes alone, in the single pipeline."""
    members = []
    for position in positions:
        job = jobs[position]
        with job_context(job):
            try:
                check_run_config(job.cfg)
                start = start_job(Path(HydraConfig.get().runtime.output_dir), job.cfg)
                if start.finished_metrics is not None or start.checkpoint is not None:
                    results[position] = (
                        start.finished_metrics
                        if start.finished_metrics is not None
                        else run_job(job.cfg)
                    )
                    continue
                L.seed_everything(job.cfg.seed, workers=True, verbose=False)
                module = build_module(job.cfg, datamodule)
                loggers = build_run_loggers(job.cfg)
                for logger in loggers:
                    logger.log_hyperparams(OmegaConf.to_container(job.cfg, resolve=True))
            except Exception as error:
                record_failure(error)
                continue
        members.append(Member(position, job, module, loggers))
    return members


def _train_pass(
    jobs: list[MemberJob],
    positions: list[int],
    datamodule: ImbalancedDataModule,
    device: torch.device,
    vectorize: bool,
) -> dict[int, dict[str, Any] | None]:
    results: dict[int, dict[str, Any] | None] = {}
    members = _build_members(jobs, positions, datamodule, results)
    if not members:
        return results
    cfg = members[0].job.cfg

    def on_epoch_end(epoch: int, step: int, figures: dict[int, dict[str, float]]) -> None:
        for k, values in figures.items():
            train = {"train/loss": values.pop("train/loss"), "epoch": epoch}
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
            max_epochs=cfg.trainer.max_epochs,
            device=device,
            limit_train_batches=cfg.trainer.get("limit_train_batches", 1.0),
            vectorize=vectorize,
            on_epoch_end=on_epoch_end,
            on_failure=on_failure,
        )
    except Exception as error:  # the pass fails, every member with it; the sweep goes on
        for member in members:
            with job_context(member.job):
                record_failure(error)
                finish_wandb(member.loggers, exit_code=1)
        return results
    stack_fit_time_s = time.perf_counter() - started
    for member, outcome in zip(members, outcomes, strict=True):
        if outcome.failure is not None:
            continue
        fit = FitResult(
            selected_state=outcome.best_state,
            last_state=outcome.last_state,
            selected_epoch=outcome.best_epoch + 1,
            epochs=cfg.trainer.max_epochs,
            fit_time_s=stack_fit_time_s / len(members),
            batch_stats=outcome.batch_stats,
            val_figures={"selected": outcome.best_val, "last": outcome.last_val},
        )
        with job_context(member.job):
            try:
                checkpoint = _save_checkpoint(member, outcome, steps)
                info = run_info(
                    member.job.cfg, str(checkpoint), "stacked", len(members), stack_fit_time_s
                )
                net = member.module.net.to(device)
                results[member.position] = evaluate_and_finish(
                    net, datamodule, fit, info, member.job.cfg.seed, member.loggers, device
                )
            except Exception as error:
                record_failure(error)
    return results


def _save_checkpoint(member: Member, outcome: MemberOutcome, steps: int) -> Path:
    """The member's selected weights as the Lightning checkpoint its checkpoint callback would
    have written (weights only; epoch and global step those of the selected epoch), and its last
    weights where a callback without a monitor (``last_checkpoint``) is configured. Returns the
    selected checkpoint's path."""
    cfg, module = member.job.cfg, member.module
    callbacks = list(instantiate(cfg.callbacks).values())
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=[], logger=False)
    trainer.strategy.connect(module)
    best = next(c for c in callbacks if c.monitor is not None)
    path = _checkpoint_path(best, outcome)
    module.net.load_state_dict(outcome.best_state)
    _place_trainer(trainer, epoch=outcome.best_epoch, steps=outcome.best_step)
    trainer.save_checkpoint(path, weights_only=True)
    for last in (c for c in callbacks if c.monitor is None):
        module.net.load_state_dict(outcome.last_state)
        _place_trainer(trainer, epoch=member.job.cfg.trainer.max_epochs - 1, steps=steps)
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
