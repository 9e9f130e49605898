"""One training run: data, model, loss, callbacks, loggers, trainer — then the run's files.

:func:`train` instantiates everything from the composed Hydra config in that order, fits with
model selection on validation G-mean, and hands the selected and the last weights to the
post-fit stage (:func:`imbloss.evaluation.evaluate_member`), which tests both on both test sets
and writes ``metrics.json`` and ``predictions.npz`` into the run folder. :func:`run_job` wraps
it for the command line: bad configuration values end a single run with one message; in a
multirun a failing member leaves ``error.json`` in its folder and the sweep goes on.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf
from tabulate import tabulate

from imbloss.checks import check_run_config, run_epochs
from imbloss.data import ImbalancedDataModule
from imbloss.errors import find_user_error
from imbloss.evaluation import FitResult, StateDict, evaluate_member
from imbloss.loggers import build_loggers, finish_wandb
from imbloss.metrics import ShotThresholds
from imbloss.module import ImbalancedClassifier
from imbloss.multirun.progress import FAILED, OK, SKIPPED, JobEnd, job_ended
from imbloss.runs.environment import run_environment
from imbloss.runs.folder import FolderConflictError, prune_checkpoints, restore_hydra_files
from imbloss.runs.layout import RunFolder
from imbloss.runs.lock import FolderBusyError, hold_run_folder
from imbloss.runs.outputs import write_json
from imbloss.runs.readers import read_checkpoint
from imbloss.runs.resume import AtomicCheckpointIO, RunState, start_job

log = logging.getLogger(__name__)
# Refusals of a job's folder that stop a whole multirun (no error.json is written into a folder
# that holds another configuration's work or that another process trains).
FOLDER_REFUSALS = (FolderConflictError, FolderBusyError)


def _output_dir() -> Path:
    return Path(HydraConfig.get().runtime.output_dir)


def _sweep_group() -> str | None:
    """The multirun's folder name, shared by its members (the W&B group), or None for one run."""
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return None
    return Path(hydra_cfg.sweep.dir).name


def _loss_hparams(loss_cfg: DictConfig) -> dict[str, Any]:
    return {
        k: v
        for k, v in OmegaConf.to_container(loss_cfg, resolve=True).items()
        if not k.startswith("_") and k != "name"
    }


def build_datamodule(cfg: DictConfig) -> ImbalancedDataModule:
    """The run's data, loaded and split (consumes no global random numbers)."""
    datamodule = instantiate(cfg.dataset)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def build_module(cfg: DictConfig, datamodule: ImbalancedDataModule) -> ImbalancedClassifier:
    """Network (its initial weights drawn from the global generator), loss, optimiser and
    learning-rate schedule (``scheduler``: None for ``scheduler=none``)."""
    net = instantiate(cfg.model)(
        input_shape=datamodule.input_shape, num_classes=datamodule.num_classes
    )
    loss_fn = instantiate(cfg.loss, class_counts=datamodule.train_class_counts)
    return ImbalancedClassifier(
        net,
        loss_fn,
        instantiate(cfg.optimizer),
        datamodule.minority_classes,
        lr_schedule=instantiate(cfg.get("scheduler")),
    )


def build_run_loggers(cfg: DictConfig) -> list[Logger]:
    """The run's loggers (W&B: named after loss, dataset, IR and seed, in the sweep's group)."""
    run_name = f"{cfg.loss.name}-{cfg.dataset.name}-ir{cfg.ir}-seed{cfg.seed}"
    tags = [cfg.loss.name, cfg.dataset.name, f"ir={cfg.ir}", f"seed={cfg.seed}", *cfg.tags]
    wandb_id = RunFolder(_output_dir()).wandb_id
    return build_loggers(cfg.get("logger"), run_name, _sweep_group(), tags, wandb_id)


def run_info(
    cfg: DictConfig,
    checkpoint: str,
    engine: str,
    stack_size: int,
    stack_fit_time_s: float,
    epochs: int,
) -> dict[str, Any]:
    """The keys of ``metrics.json`` that describe the run. ``engine`` is ``single`` (one
    Lightning fit) or ``stacked`` (a member of a stacked group of ``stack_size`` trained in
    ``stack_fit_time_s``; its ``fit_time_s`` is that time / ``stack_size``). ``epochs``: the
    epochs trained; ``stopped_at_epoch`` is that number when it is short of
    ``trainer.max_epochs`` (``stop_at_epoch``), else None."""
    return {
        "loss": cfg.loss.name,
        "hparams": _loss_hparams(cfg.loss),
        "model": cfg.model._target_.rsplit(".", 1)[-1],
        "seed": cfg.seed,
        "checkpoint": checkpoint,
        "engine": engine,
        "stack_size": stack_size,
        "stack_fit_time_s": stack_fit_time_s,
        "threads": torch.get_num_threads(),
        "precision": str(cfg.trainer.precision),
        "stopped_at_epoch": epochs if epochs < cfg.trainer.max_epochs else None,
    }


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit, select on validation G-mean, test both weight sets; write the run's files; return
    ``metrics.json``.

    A folder that holds a finished run is not retrained; one with ``checkpoints/last.ckpt`` resumes.
    The job holds its folder's lock throughout (:mod:`imbloss.runs.lock`): a folder another
    process trains is refused (FolderBusyError) before a file in it changes.
    Under DDP the first process evaluates and writes the files; the others return ``{}``.
    """
    check_run_config(cfg)
    output_dir = _output_dir()
    if rank_zero_only.rank != 0:  # the first process holds the folder for all of them
        return _train_in_folder(cfg, output_dir)
    with ExitStack() as held:
        try:
            held.enter_context(hold_run_folder(output_dir))
        except FolderBusyError:
            restore_hydra_files(output_dir)  # Hydra rewrote them for this refused job
            raise
        return _train_in_folder(cfg, output_dir)


def _train_in_folder(cfg: DictConfig, output_dir: Path) -> dict[str, Any]:
    """:func:`train` in ``output_dir``, which this process (or its first process) holds."""
    start = start_job(output_dir, cfg)
    if start.finished_metrics is not None:
        report_job_end(SKIPPED)
        return start.finished_metrics
    if cfg.get("threads") is not None:
        torch.set_num_threads(cfg.threads)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg)
    module = build_module(cfg, datamodule)
    run_state = RunState()
    callbacks = [*instantiate(cfg.callbacks).values(), run_state]
    loggers = build_run_loggers(cfg)
    try:
        trainer: L.Trainer = instantiate(
            cfg.trainer,
            max_epochs=run_epochs(cfg),  # stop_at_epoch stops it early; the schedule is unchanged
            callbacks=callbacks,
            logger=loggers,
            plugins=[AtomicCheckpointIO()],
        )
        for logger in loggers:
            logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        fit, checkpoint = _fit(trainer, module, datamodule, start.checkpoint, run_state)
    except BaseException:
        finish_wandb(loggers, exit_code=1)
        raise
    if not trainer.is_global_zero:
        return {}
    info = run_info(cfg, checkpoint, "single", 1, fit.fit_time_s, fit.epochs)
    return evaluate_and_finish(
        module.net, datamodule, fit, info, cfg, loggers, trainer.strategy.root_device
    )


def evaluate_and_finish(
    net: torch.nn.Module,
    datamodule: ImbalancedDataModule,
    fit: FitResult,
    info: dict[str, Any],
    cfg: DictConfig,
    loggers: list[Logger],
    device: torch.device,
) -> dict[str, Any]:
    """The post-fit stage of one run or stacked member (:func:`imbloss.evaluation.evaluate_member`
    into the current job's folder, with where it ran:
    :func:`imbloss.runs.environment.run_environment`), the checkpoints it no longer needs removed
    (``checkpoints``), then the end of its W&B run and the printed summary."""
    output_dir = _output_dir()
    info = {**info, "environment": run_environment(device)}
    try:
        metrics = evaluate_member(
            net,
            datamodule,
            fit,
            info,
            output_dir,
            seed=cfg.seed,
            loggers=loggers,
            device=device,
            shots=ShotThresholds.from_config(cfg.get("shots")),
        )
    except BaseException:
        finish_wandb(loggers, exit_code=1)
        raise
    stopped = metrics.get("stopped_at_epoch") is not None  # continued later from last.ckpt
    prune_checkpoints(output_dir, "all" if stopped else cfg.get("checkpoints", "best"))
    report_job_end(OK, metrics, loggers)
    wandb_message = finish_wandb(loggers, exit_code=0)
    print_summary(metrics, output_dir)
    if wandb_message:
        print(wandb_message)
    return metrics


def _net_state(state_dict: StateDict, prefix: str = "net.") -> dict[str, torch.Tensor]:
    """The network's entries of an ``ImbalancedClassifier`` state dict, prefix removed."""
    return {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}


def _fit(
    trainer: L.Trainer,
    module: ImbalancedClassifier,
    datamodule: ImbalancedDataModule,
    resume_from: Path | None,
    run_state: RunState,
) -> tuple[FitResult, str]:
    """Fit (from the checkpoint ``resume_from`` if given); the last and the selected (best
    validation G-mean) network weights, and the path of the selected checkpoint ("" without a
    checkpoint callback: then the last weights count)."""
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
    fit_time_s = run_state.fit_time_s
    epochs = trainer.current_epoch
    last_state = {k: v.detach().clone() for k, v in module.net.state_dict().items()}
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    steps = {"last": trainer.global_step, "selected": trainer.global_step}
    if best:
        checkpoint = read_checkpoint(Path(best))
        selected_state = _net_state(checkpoint["state_dict"])
        selected_epoch = int(checkpoint["epoch"]) + 1
        steps["selected"] = int(checkpoint["global_step"])
    else:
        selected_state, selected_epoch = last_state, epochs
    stats = module.batch_stats.summary() if module.batch_stats is not None else None
    # the validation figures of both weight sets, where the fit measured them
    val_figures = {w: module.val_figures[s] for w, s in steps.items() if s in module.val_figures}
    fit = FitResult(
        selected_state, last_state, selected_epoch, epochs, fit_time_s, stats, val_figures
    )
    return fit, best


def print_summary(metrics: dict[str, Any], output_dir: Path) -> None:
    """The short table printed at the end of a run."""
    figures = [
        ("G-mean", "gmean"),
        ("AUC", "auc"),
        ("F1 (macro)", "f1"),
        ("F1 (minority)", "f1_minority"),
        ("accuracy", "acc"),
        ("minority acc", "minority_acc"),
        ("majority acc", "majority_acc"),
        ("val G-mean (selected)", "val_gmean"),
    ]
    rows = [(name, f"{metrics[key]:.4f}") for name, key in figures if metrics.get(key) is not None]
    low, high = metrics["gmean_ci95"]
    rows.insert(1, ("G-mean 95 % interval", f"[{low:.4f}, {high:.4f}]"))
    full = metrics["full_test"]
    rows.append(("G-mean, whole test split", f"{full['gmean']:.4f}"))
    rows.append(("G-mean, last epoch", f"{metrics['last']['gmean']:.4f}"))
    rows.append(("selected epoch", f"{metrics['selected_epoch']} of {metrics['epochs']}"))
    rows.append(("fit time", f"{metrics['fit_time_s']:.1f} s"))
    ir = "null" if metrics["ir"] is None else f"{metrics['ir']:g}"
    title = f"test figures: loss={metrics['loss']} dataset={metrics['dataset']} ir={ir}"
    table = tabulate(
        rows, tablefmt="simple_outline", disable_numparse=True, colalign=("left", "right")
    )
    print(f"\n{title}\n{table}")
    print(f"outputs: {output_dir}")


class DropLightningTips(logging.Filter):
    """Drops Lightning's "💡 Tip: ... try installing" lines: advertisements of its cloud
    services, printed at every Trainer's start, that say nothing about the run."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip:")


def route_lightning_logs_through_hydra() -> None:
    """Lightning's own console handlers would print every message a second time beside Hydra's
    root handlers (console and ``train.log``); let its records go to those alone, without its
    tips (:class:`DropLightningTips`)."""
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, DropLightningTips) for f in rank_zero.filters):
        rank_zero.addFilter(DropLightningTips())


def run_job(cfg: DictConfig) -> dict[str, Any] | None:
    """The command line's task: one run, or one member of a multirun."""
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    route_lightning_logs_through_hydra()
    try:
        return train(cfg)
    except Exception as error:
        user_error = find_user_error(error)
        if user_error is not None and (not multirun or isinstance(user_error, FOLDER_REFUSALS)):
            print(f"imbloss: error: {user_error}", file=sys.stderr)
            sys.exit(2)
        if not multirun:
            raise
        record_failure(user_error or error)
    return None


def report_job_end(
    status: str, metrics: dict[str, Any] | None = None, loggers: Sequence[Logger] = ()
) -> None:
    """Print the multirun's progress line for the current job (:mod:`imbloss.multirun.progress`)
    and put the same figures in the summary of its W&B run, if it has one; nothing for a single
    run."""
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return
    end = JobEnd(" ".join(hydra_cfg.overrides.task), status)
    if metrics is not None:
        seconds = metrics["fit_time_s"] + metrics["evaluation_time_s"]
        end = JobEnd(end.label, status, metrics["gmean"], metrics["full_test"]["gmean"], seconds)
    reported = job_ended(hydra_cfg.sweep.dir, end)
    if reported is None:
        return
    line, progress = reported
    print(f"imbloss: {line}", flush=True)
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.summary.update(progress.figures())


def record_failure(error: BaseException) -> None:
    """Write the current job's ``error.json`` (its error and traceback), log it and count it in
    the multirun's progress."""
    path = RunFolder(_output_dir()).error
    write_json(
        path,
        {
            "status": "failed",
            "error": f"{type(error).__name__}: {error}",
            "traceback": "".join(traceback.format_exception(error)),
        },
    )
    log.error("run failed (%s); recorded in %s, the sweep goes on", error, path)
    report_job_end(FAILED)
