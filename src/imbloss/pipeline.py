"""One training run: data, model, loss, callbacks, loggers, trainer — then the run's files.

:func:`train` instantiates everything from the composed Hydra config in that order, fits with
model selection on validation G-mean, tests the selected checkpoint, and writes ``metrics.json``
and ``predictions.npz`` into the run folder. :func:`run_job` wraps it for the command line: bad
configuration values end a single run with one message; in a multirun a failing member leaves
``error.json`` in its folder and the sweep goes on.
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf
from tabulate import tabulate

from imbloss.data import ImbalancedDataModule
from imbloss.errors import ConfigError
from imbloss.loggers import build_loggers, finish_wandb
from imbloss.module import ImbalancedClassifier
from imbloss.outputs import (
    ERROR_FILE,
    METRICS_FILE,
    PREDICTIONS_FILE,
    write_json,
    write_predictions,
)

log = logging.getLogger(__name__)


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
        for k, v in OmegaConf.to_container(loss_cfg).items()
        if not k.startswith("_") and k != "name"
    }


@dataclass(frozen=True)
class FitRecord:
    """How a run was fitted: ``fit_time_s`` is ``stack_fit_time_s / stack_size``."""

    fit_time_s: float
    epochs: int
    engine: str  # "single" (one Lightning fit) or "stacked" (a member of a stacked group)
    stack_size: int
    stack_fit_time_s: float


def build_datamodule(cfg: DictConfig) -> ImbalancedDataModule:
    """The run's data, loaded and split (consumes no global random numbers)."""
    datamodule = instantiate(cfg.dataset)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def build_module(cfg: DictConfig, datamodule: ImbalancedDataModule) -> ImbalancedClassifier:
    """Network (its initial weights drawn from the global generator), loss and optimiser."""
    net = instantiate(cfg.model)(
        input_shape=datamodule.input_shape, num_classes=datamodule.num_classes
    )
    loss_fn = instantiate(cfg.loss, class_counts=datamodule.train_class_counts)
    return ImbalancedClassifier(
        net, loss_fn, instantiate(cfg.optimizer), datamodule.minority_classes
    )


def build_run_loggers(cfg: DictConfig) -> list[Logger]:
    """The run's loggers (W&B: named after loss, dataset, IR and seed, in the sweep's group)."""
    run_name = f"{cfg.loss.name}-{cfg.dataset.name}-ir{cfg.ir}-seed{cfg.seed}"
    tags = [cfg.loss.name, cfg.dataset.name, f"ir={cfg.ir}", f"seed={cfg.seed}", *cfg.tags]
    loggers = build_loggers(cfg.get("logger"), run_name, _sweep_group(), tags)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    return loggers


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit, select on validation G-mean, test; write the run's files; return ``metrics.json``."""
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg)
    module = build_module(cfg, datamodule)
    callbacks = list(instantiate(cfg.callbacks).values())
    loggers = build_run_loggers(cfg)
    try:
        trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers)
        started = time.perf_counter()
        trainer.fit(module, datamodule=datamodule)
        fit_time_s = time.perf_counter() - started
    except BaseException:
        finish_wandb(loggers, exit_code=1)
        raise
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    fit = FitRecord(
        fit_time_s=fit_time_s,
        epochs=trainer.current_epoch,
        engine="single",
        stack_size=1,
        stack_fit_time_s=fit_time_s,
    )
    return test_and_write(cfg, trainer, module, datamodule, loggers, best, fit)


def test_and_write(
    cfg: DictConfig,
    trainer: L.Trainer,
    module: ImbalancedClassifier,
    datamodule: ImbalancedDataModule,
    loggers: list[Logger],
    best: str,
    fit: FitRecord,
) -> dict[str, Any]:
    """Re-validate and test the checkpoint ``best`` (the fitted weights if empty); write
    ``predictions.npz`` and ``metrics.json``, end the W&B run, print the summary."""
    try:
        ckpt_path = best or None
        val_figures = trainer.validate(
            module, datamodule=datamodule, ckpt_path=ckpt_path, verbose=False
        )[0]
        trainer.test(module, datamodule=datamodule, ckpt_path=ckpt_path, verbose=False)
    except BaseException:
        finish_wandb(loggers, exit_code=1)
        raise
    metrics = {
        "status": "ok",
        **module.test_summary,
        "val_gmean": val_figures["val/gmean"],
        "val_auc": val_figures["val/auc"],
        "fit_time_s": fit.fit_time_s,
        "epochs": fit.epochs,
        "engine": fit.engine,
        "stack_size": fit.stack_size,
        "stack_fit_time_s": fit.stack_fit_time_s,
        "loss": cfg.loss.name,
        "hparams": _loss_hparams(cfg.loss),
        "model": cfg.model._target_.rsplit(".", 1)[-1],
        "seed": cfg.seed,
        **datamodule.summary(),
        "checkpoint": best,
    }
    output_dir = _output_dir()
    write_predictions(
        output_dir / PREDICTIONS_FILE, module.test_target.numpy(), module.test_probs.numpy()
    )
    write_json(output_dir / METRICS_FILE, metrics)
    wandb_message = finish_wandb(loggers, exit_code=0)
    print_summary(metrics, output_dir)
    if wandb_message:
        print(wandb_message)
    return metrics


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
    rows.append(("fit time", f"{metrics['fit_time_s']:.1f} s"))
    ir = "null" if metrics["ir"] is None else f"{metrics['ir']:g}"
    title = f"test figures: loss={metrics['loss']} dataset={metrics['dataset']} ir={ir}"
    table = tabulate(
        rows, tablefmt="simple_outline", disable_numparse=True, colalign=("left", "right")
    )
    print(f"\n{title}\n{table}")
    print(f"outputs: {output_dir}")


def route_lightning_logs_through_hydra() -> None:
    """Lightning's own console handlers would print every message a second time beside Hydra's
    root handlers (console and ``train.log``); let its records go to those alone."""
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True


def run_job(cfg: DictConfig) -> dict[str, Any] | None:
    """The command line's task: one run, or one member of a multirun."""
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    route_lightning_logs_through_hydra()
    try:
        return train(cfg)
    except ConfigError as error:
        if not multirun:
            print(f"imbloss: error: {error}", file=sys.stderr)
            sys.exit(2)
        record_failure(error)
    except Exception as error:
        if not multirun:
            raise
        record_failure(error)
    return None


def record_failure(error: BaseException) -> None:
    """Write the current job's ``error.json`` (its error and traceback) and log it."""
    path = _output_dir() / ERROR_FILE
    write_json(
        path,
        {
            "status": "failed",
            "error": f"{type(error).__name__}: {error}",
            "traceback": "".join(traceback.format_exception(error)),
        },
    )
    log.error("run failed (%s); recorded in %s, the sweep goes on", error, path)
