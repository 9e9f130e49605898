"""The post-fit stage of one run: judge its weights on both test sets and write its files.

:func:`evaluate_member` needs no Lightning fit: it takes a network, the weights a fit produced
(those selected on validation G-mean and those after the final epoch, as :class:`FitResult`) and
the set-up data module, and

1. predicts the whole test split with each of the two weight sets (evaluation mode, no
   gradients, batches transformed as in validation); the protocol's test split is a subset of the
   whole one (``datamodule.test_in_full_test``), so its predictions are read from the same pass.
   Each weight set's validation G-mean and AUC are those the fit measured when it validated them
   (``FitResult.val_figures``); a weight set without them is validated here. When the selected
   weights are the last ones, they are judged once and both sections of ``metrics.json`` hold
   the same figures;
2. computes the figures of :func:`imbloss.metrics.classification_summary` on each test set, the
   many/medium/few-shot accuracies (:func:`imbloss.metrics.shot_accuracies`, the classes grouped
   by ``datamodule.protocol_train_class_counts`` at the ``shots`` thresholds) and the top-1 error
   where that test set is balanced (:func:`imbloss.metrics.top1_error`), and
   the 95 % stratified-bootstrap intervals of G-mean and AUC on both
   (:class:`imbloss.intervals.StratifiedBootstrap`, seeded by the run's seed, computed on the
   evaluation device; the two weight sets are judged on the same resamples);
3. writes ``predictions.npz`` and ``metrics.json`` through the run-folder contract
   (:mod:`imbloss.runs.layout`) and logs the final figures to the given loggers.

``metrics.json`` (the selected weights at the top level, as before)::

    gmean, auc, f1, acc, per_class_recall, minority_acc, majority_acc, [f1_minority],
    many_shot_acc, medium_shot_acc, few_shot_acc, top1_error,
    gmean_ci95, auc_ci95                     protocol test split, selected weights
    val_gmean, val_auc                       validation split, selected weights
    full_test: {same figure keys, class_counts}   whole test split, selected weights
    last: {figure keys, gmean_ci95, auc_ci95, val_gmean, val_auc, full_test: {...}}
    selected_epoch                           1-based: the weights after that many epochs
    shots: {few, many, classes: {many, medium, few}}   the thresholds and each group's classes
    batch_stats                              imbloss.batch_stats.BatchStats.summary()
    evaluation_time_s                        wall time of this stage (fit_time_s excludes it)
    fit_time_s, epochs, ... (the caller's run description), the data module's summary

The single-run pipeline calls it after ``trainer.fit``; a stacked trainer calls it per member.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch.loggers import Logger
from torch import nn

from imbloss.data import ImbalancedDataModule
from imbloss.intervals import StratifiedBootstrap
from imbloss.metrics import (
    DEFAULT_SHOTS,
    SHOT_FIGURES,
    VAL_FIGURES,
    ShotThresholds,
    classification_summary,
    shot_accuracies,
    top1_error,
)
from imbloss.models import use_preferred_layout
from imbloss.runs.layout import PREDICTION_KEYS, RunFolder
from imbloss.runs.outputs import write_json, write_predictions

TEST_SETS = ("test", "full_test")
WEIGHT_SETS = ("selected", "last")
StateDict = Mapping[str, torch.Tensor]
Prediction = tuple[torch.Tensor, torch.Tensor]  # (target [N], probs [N, C]) on the CPU


@dataclass(frozen=True)
class FitResult:
    """What training one member produced.

    ``selected_state`` / ``last_state``: the network's state dicts selected on validation G-mean
    and after the final epoch; ``selected_epoch``: 1-based epoch of the selected weights;
    ``epochs``: epochs trained; ``batch_stats``: ``BatchStats.summary()`` of its training batches;
    ``val_figures``: per weight set (``selected``, ``last``), the validation ``gmean`` and ``auc``
    the fit measured on the whole validation split with those weights (a weight set left out is
    validated by :func:`evaluate_member`).
    """

    selected_state: StateDict
    last_state: StateDict
    selected_epoch: int
    epochs: int
    fit_time_s: float
    batch_stats: Mapping[str, Any] | None = None
    val_figures: Mapping[str, Mapping[str, float]] = field(default_factory=dict)


@torch.no_grad()
def predict(
    net: nn.Module, datamodule: ImbalancedDataModule, split: str, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(target [N], probs [N, C])`` of ``net`` on an evaluation split, on the CPU."""
    was_training = net.training
    net.eval()
    probs, targets = [], []
    try:
        for images, target in datamodule.eval_batches(split):
            x, y = datamodule.transform_batch((images.to(device), target.to(device)), False)
            probs.append(torch.softmax(net(x).float(), dim=1).cpu())
            targets.append(y.cpu())
    finally:
        net.train(was_training)
    return torch.cat(targets), torch.cat(probs)


def same_weights(first: StateDict, second: StateDict) -> bool:
    """True when two state dicts hold the same tensors (names and values)."""
    return first.keys() == second.keys() and all(
        torch.equal(first[name].cpu(), second[name].cpu()) for name in first
    )


def test_predictions(
    net: nn.Module, datamodule: ImbalancedDataModule, device: torch.device
) -> dict[str, Prediction]:
    """``net``'s predictions on both test sets, from one pass over the whole test split."""
    target, probs = predict(net, datamodule, "full_test", device)
    positions = datamodule.test_in_full_test
    return {"test": (target[positions], probs[positions]), "full_test": (target, probs)}


def validation_figures(
    net: nn.Module, datamodule: ImbalancedDataModule, device: torch.device
) -> dict[str, float]:
    """``{"gmean", "auc"}`` of ``net`` on the validation split."""
    target, probs = predict(net, datamodule, "val", device)
    summary = classification_summary(probs, target, datamodule.minority_classes)
    return {name: summary[name] for name in VAL_FIGURES}


def _figures(
    target: torch.Tensor,
    probs: torch.Tensor,
    minority: Sequence[int],
    bootstrap: StratifiedBootstrap,
    shot_groups: Mapping[str, Sequence[int]],
    class_counts: Sequence[int],
) -> dict[str, Any]:
    summary = classification_summary(probs, target, minority)
    return {
        **summary,
        **shot_accuracies(summary["per_class_recall"], shot_groups),  # type: ignore[arg-type]
        "top1_error": top1_error(summary["acc"], class_counts),  # type: ignore[arg-type]
        **bootstrap.ci95(probs),
    }


def weight_set_figures(
    predictions: Mapping[str, Prediction],
    val: Mapping[str, float],
    datamodule: ImbalancedDataModule,
    bootstraps: Mapping[str, StratifiedBootstrap],
    shots: ShotThresholds = DEFAULT_SHOTS,
) -> dict[str, Any]:
    """Test figures with intervals, validation G-mean/AUC (``val``), and the whole test split's
    figures."""
    minority = datamodule.minority_classes
    groups = shots.groups(datamodule.protocol_train_class_counts)
    full = _figures(
        *predictions["full_test"],
        minority,
        bootstraps["full_test"],
        groups,
        datamodule.full_test_class_counts,
    )
    test = _figures(
        *predictions["test"], minority, bootstraps["test"], groups, datamodule.test_class_counts
    )
    return {
        **test,
        "val_gmean": val["gmean"],
        "val_auc": val["auc"],
        "full_test": {**full, "class_counts": datamodule.full_test_class_counts},
    }


def _logged_figures(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The final figures as flat logger keys: ``test/gmean``, ``last/full_test/auc``, ..."""
    flat: dict[str, float] = {}
    names = (
        "gmean",
        "auc",
        "f1",
        "acc",
        "minority_acc",
        "majority_acc",
        *SHOT_FIGURES,
        "top1_error",
    )
    for prefix, figures in (("", metrics), ("last/", metrics["last"])):
        for test_set, source in (("test", figures), ("full_test", figures["full_test"])):
            for name in names:
                if source.get(name) is not None:
                    flat[f"{prefix}{test_set}/{name}"] = source[name]
    flat["selected_epoch"] = metrics["selected_epoch"]
    stats = metrics.get("batch_stats")
    if stats:
        flat["batch_stats/batches_missing_any"] = stats["batches_missing_any"]
        for key in ("mean_per_batch", "missing_fraction"):
            flat.update({f"batch_stats/{key}/{j}": v for j, v in enumerate(stats[key])})
    return flat


def evaluate_member(
    net: nn.Module,
    datamodule: ImbalancedDataModule,
    fit: FitResult,
    run_info: Mapping[str, Any],
    output_dir: Path | str,
    seed: int,
    loggers: Sequence[Logger] = (),
    device: torch.device | str | None = None,
    shots: ShotThresholds = DEFAULT_SHOTS,
) -> dict[str, Any]:
    """Evaluate both weight sets of one member, write its files, log; return ``metrics.json``.

    ``net`` is the member's network (its weights are overwritten: it ends with the selected
    ones, in the layout preferred on ``device``); ``datamodule`` is set up; ``run_info`` holds
    the keys that describe the run (loss, hparams, model, seed, ...), merged into
    ``metrics.json`` with the data module's summary; ``seed`` seeds the bootstrap; ``device``
    defaults to that of the network's parameters; ``shots``: the many/medium/few-shot thresholds.
    """
    started = time.perf_counter()
    device = torch.device(device) if device is not None else next(net.parameters()).device
    use_preferred_layout(net, device)  # a stacked member's network, as its stack had it
    weight_sets = {"selected": fit.selected_state}
    if not same_weights(fit.selected_state, fit.last_state):
        weight_sets = {"last": fit.last_state, **weight_sets}  # the net ends with the selected
    predictions: dict[str, dict[str, Prediction]] = {}
    val: dict[str, Mapping[str, float]] = {}
    for weights, state in weight_sets.items():
        net.load_state_dict(state)
        predictions[weights] = test_predictions(net, datamodule, device)
        measured = fit.val_figures.get(weights)
        val[weights] = (
            measured if measured is not None else validation_figures(net, datamodule, device)
        )
    selected = predictions["selected"]
    bootstraps = {
        test_set: StratifiedBootstrap(selected[test_set][0], seed=seed, device=device)
        for test_set in TEST_SETS
    }
    figures = {
        weights: weight_set_figures(
            predictions[weights], val[weights], datamodule, bootstraps, shots
        )
        for weights in weight_sets
    }
    if "last" not in weight_sets:  # the selected weights are the last ones: judged once
        predictions["last"] = selected
        figures["last"] = copy.deepcopy(figures["selected"])
    metrics: dict[str, Any] = {
        "status": "ok",
        **figures["selected"],
        "last": figures["last"],
        "selected_epoch": fit.selected_epoch,
        "shots": {
            "few": shots.few,
            "many": shots.many,
            "classes": shots.groups(datamodule.protocol_train_class_counts),
        },
        "fit_time_s": fit.fit_time_s,
        "epochs": fit.epochs,
        "batch_stats": dict(fit.batch_stats) if fit.batch_stats is not None else None,
        "evaluation_time_s": time.perf_counter() - started,
        **run_info,
        **datamodule.summary(),
    }
    arrays: dict[str, np.ndarray] = {}
    for (weights, test_set), (target_key, probs_key) in PREDICTION_KEYS.items():
        target, probs = predictions[weights][test_set]
        arrays[target_key] = target.numpy()
        arrays[probs_key] = probs.numpy()
    folder = RunFolder(Path(output_dir))
    write_predictions(folder.predictions, arrays)
    write_json(folder.metrics, metrics)
    flat = _logged_figures(metrics)
    for logger in loggers:
        logger.log_metrics(flat, step=fit.epochs)
        logger.save()
    return metrics
