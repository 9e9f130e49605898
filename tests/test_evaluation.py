"""The post-fit stage without a Lightning fit: both weight sets, both test sets, the files."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from imblearn.metrics import geometric_mean_score
from sklearn.metrics import roc_auc_score
from torch import nn

from imbloss.data import ImbalancedDataModule
from imbloss.evaluation import FitResult, evaluate_member, weight_set_figures
from imbloss.intervals import StratifiedBootstrap
from imbloss.metrics import ShotThresholds
from imbloss.runs.layout import PREDICTION_KEYS, RunFolder


class RecordingLogger:
    def __init__(self) -> None:
        self.logged: list[tuple[dict, int]] = []
        self.saved = 0

    def log_metrics(self, metrics: dict, step: int) -> None:
        self.logged.append((metrics, step))

    def save(self) -> None:
        self.saved += 1


def _datamodule(tmp_path: Path) -> ImbalancedDataModule:
    datamodule = ImbalancedDataModule("synthetic", str(tmp_path / "data"), ir=10, batch_size=64)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def _centroid_state(datamodule: ImbalancedDataModule, noise: float) -> dict[str, torch.Tensor]:
    """A nearest-class-mean linear classifier of the training split, its weights perturbed."""
    images, targets = datamodule.transform_batch(datamodule._splits["train"], training=False)
    flat = images.flatten(1)
    means = torch.stack([flat[targets == j].mean(0) for j in range(10)])
    generator = torch.Generator().manual_seed(int(noise * 100))
    weight = means + noise * torch.randn(means.shape, generator=generator)
    return {"1.weight": weight, "1.bias": -0.5 * (means**2).sum(1)}


def _linear_net(datamodule: ImbalancedDataModule) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(datamodule.input_shape)), 10))


def _two_weight_sets(datamodule: ImbalancedDataModule, **fields: Any) -> FitResult:
    """A fit whose selected weights (epoch 3 of 5) differ from its last ones."""
    settings = {"selected_epoch": 3, "epochs": 5, "fit_time_s": 1.5, **fields}
    return FitResult(
        selected_state=_centroid_state(datamodule, 0.0),
        last_state=_centroid_state(datamodule, 0.5),
        **settings,
    )


def test_member_files_recompute_from_predictions(tmp_path: Path) -> None:
    datamodule = _datamodule(tmp_path)
    net = _linear_net(datamodule)
    fit = _two_weight_sets(
        datamodule,
        batch_stats={"batches": 1, "mean_per_batch": [1.0] * 10,
                     "missing_fraction": [0.0] * 10, "batches_missing_any": 0.0},
    )  # fmt: skip
    logger = RecordingLogger()
    returned = evaluate_member(
        net, datamodule, fit, {"loss": "ce", "seed": 7}, tmp_path / "run", seed=7, loggers=[logger]
    )
    folder = RunFolder(tmp_path / "run")
    metrics = json.loads(folder.metrics.read_text())
    assert metrics == json.loads(json.dumps(returned))
    assert (metrics["selected_epoch"], metrics["epochs"], metrics["loss"]) == (3, 5, "ce")
    assert metrics["full_test"]["class_counts"] == [50] * 10
    assert metrics["test_class_counts"] == [5, 50] * 5
    arrays = np.load(folder.predictions)
    sections = {
        ("selected", "test"): metrics,
        ("selected", "full_test"): metrics["full_test"],
        ("last", "test"): metrics["last"],
        ("last", "full_test"): metrics["last"]["full_test"],
    }
    for (weights, test_set), figures in sections.items():
        target_key, probs_key = PREDICTION_KEYS[(weights, test_set)]
        target, probs = arrays[target_key], arrays[probs_key]
        assert len(target) == (275 if test_set == "test" else 500)
        assert figures["gmean"] > 0 and figures["gmean"] == pytest.approx(
            geometric_mean_score(target, probs.argmax(1)), abs=1e-6
        )
        assert figures["auc"] == pytest.approx(
            roc_auc_score(target, probs, multi_class="ovr"), abs=1e-5
        )
        expected_ci = StratifiedBootstrap(torch.from_numpy(target), seed=7).ci95(
            torch.from_numpy(probs)
        )
        assert figures["gmean_ci95"] == pytest.approx(expected_ci["gmean_ci95"])
        assert figures["auc_ci95"] == pytest.approx(expected_ci["auc_ci95"])
        assert figures["auc_ci95"][0] <= figures["auc"] <= figures["auc_ci95"][1]
    assert metrics["gmean"] != metrics["last"]["gmean"]  # two different weight sets
    # synthetic step IR=10: 20 and 200 training images before the hold-out, at 20 / 100
    assert metrics["shots"] == {
        "few": 20,
        "many": 100,
        "classes": {"many": [1, 3, 5, 7, 9], "medium": [0, 2, 4, 6, 8], "few": []},
    }
    for figures in sections.values():
        recall = figures["per_class_recall"]
        assert figures["many_shot_acc"] == pytest.approx(np.mean(recall[1::2]))
        assert figures["medium_shot_acc"] == pytest.approx(np.mean(recall[0::2]))
        assert figures["few_shot_acc"] is None  # no class has fewer than 20
    # the protocol's test split is skewed (5 / 50 a class), the whole one balanced
    assert metrics["top1_error"] is None and metrics["last"]["top1_error"] is None
    assert metrics["full_test"]["top1_error"] == pytest.approx(1 - metrics["full_test"]["acc"])
    for key, value in fit.selected_state.items():  # the net ends with the selected weights
        assert torch.equal(net.state_dict()[key], value)
    ((logged, step),) = logger.logged
    assert step == 5 and logger.saved == 1
    assert logged["full_test/gmean"] == metrics["full_test"]["gmean"]
    assert logged["last/test/auc"] == metrics["last"]["auc"]
    assert logged["batch_stats/missing_fraction/3"] == 0.0
    assert logged["last/full_test/many_shot_acc"] == metrics["last"]["full_test"]["many_shot_acc"]
    assert "test/few_shot_acc" not in logged and "test/top1_error" not in logged  # None: not logged


def test_zero_recall_on_the_protocol_test_but_not_on_the_whole_one() -> None:
    # protocol test: class 0 has 2 samples, both wrong; the whole split adds 2 right ones
    test_target = torch.tensor([0, 0, 1, 1, 1])
    test_probs = torch.tensor([[0.2, 0.8], [0.4, 0.6], [0.1, 0.9], [0.3, 0.7], [0.6, 0.4]])
    full_target = torch.cat([test_target, torch.tensor([0, 0])])
    full_probs = torch.cat([test_probs, torch.tensor([[0.9, 0.1], [0.7, 0.3]])])
    predictions = {"test": (test_target, test_probs), "full_test": (full_target, full_probs)}
    datamodule = SimpleNamespace(
        minority_classes=[0],
        full_test_class_counts=[4, 3],
        test_class_counts=[2, 3],
        protocol_train_class_counts=[15, 120],  # class 0 few-shot, class 1 many-shot
    )
    bootstraps = {
        "test": StratifiedBootstrap(test_target, seed=0),
        "full_test": StratifiedBootstrap(full_target, seed=0),
    }
    val = {"gmean": 0.25, "auc": 0.5}
    figures = weight_set_figures(predictions, val, datamodule, bootstraps)
    assert figures["gmean"] == 0.0 and figures["per_class_recall"] == [0.0, pytest.approx(2 / 3)]
    assert figures["gmean_ci95"] == [0.0, 0.0]  # no resample can find a right class-0 answer
    full = figures["full_test"]
    assert full["per_class_recall"] == [0.5, pytest.approx(2 / 3)]
    assert full["gmean"] == pytest.approx((0.5 * 2 / 3) ** 0.5)
    assert full["minority_acc"] == 0.5 and full["class_counts"] == [4, 3]
    assert full["gmean_ci95"][0] <= full["gmean"] <= full["gmean_ci95"][1]
    # AUC of label 1 on the whole split: 3 positives x 4 negatives, 9 of 12 pairs won
    positives, negatives = [0.9, 0.7, 0.4], [0.8, 0.6, 0.1, 0.3]
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    assert wins == 9 and full["auc"] == pytest.approx(9 / 12)
    assert (figures["val_gmean"], figures["val_auc"]) == (0.25, 0.5)
    # the shot groups follow the training counts: each group's mean recall, none medium-shot
    assert (figures["few_shot_acc"], figures["many_shot_acc"]) == (0.0, pytest.approx(2 / 3))
    assert (full["few_shot_acc"], full["many_shot_acc"]) == (0.5, pytest.approx(2 / 3))
    assert figures["medium_shot_acc"] is None and full["medium_shot_acc"] is None
    assert figures["top1_error"] is None and full["top1_error"] is None  # neither is balanced
    wider = weight_set_figures(predictions, val, datamodule, bootstraps, ShotThresholds(10, 200))
    assert wider["medium_shot_acc"] == pytest.approx((0 + 2 / 3) / 2)
    assert wider["few_shot_acc"] is None and wider["many_shot_acc"] is None


def _recorded_splits(datamodule: ImbalancedDataModule, monkeypatch) -> list[str]:
    """The evaluation splits the post-fit stage asks the data module for, in order."""
    requested: list[str] = []
    original = datamodule.eval_batches

    def recording(split: str):
        requested.append(split)
        return original(split)

    monkeypatch.setattr(datamodule, "eval_batches", recording)
    return requested


def test_one_pass_over_the_whole_test_split_serves_both_test_sets(tmp_path, monkeypatch):
    datamodule = _datamodule(tmp_path)
    requested = _recorded_splits(datamodule, monkeypatch)
    fit = _two_weight_sets(
        datamodule,
        val_figures={"selected": {"gmean": 0.125, "auc": 0.25}, "last": {"gmean": 0.5, "auc": 1}},
    )
    metrics = evaluate_member(_linear_net(datamodule), datamodule, fit, {}, tmp_path, seed=0)
    assert requested == ["full_test", "full_test"]  # the fit's validation figures are kept
    assert (metrics["val_gmean"], metrics["val_auc"]) == (0.125, 0.25)
    assert (metrics["last"]["val_gmean"], metrics["last"]["val_auc"]) == (0.5, 1)
    arrays = np.load(RunFolder(tmp_path).predictions)
    positions = datamodule.test_in_full_test.numpy()
    for weights in ("selected", "last"):
        test_target, test_probs = PREDICTION_KEYS[(weights, "test")]
        full_target, full_probs = PREDICTION_KEYS[(weights, "full_test")]
        assert np.array_equal(arrays[test_target], arrays[full_target][positions])
        assert np.array_equal(arrays[test_probs], arrays[full_probs][positions])
        assert np.array_equal(arrays[test_target], datamodule._splits["test"][1].numpy())
    assert metrics["evaluation_time_s"] > 0


def test_validation_figures_the_fit_did_not_measure_are_measured(tmp_path, monkeypatch):
    datamodule = _datamodule(tmp_path)
    requested = _recorded_splits(datamodule, monkeypatch)
    fit = _two_weight_sets(datamodule, val_figures={"selected": {"gmean": 0.125, "auc": 0.25}})
    metrics = evaluate_member(_linear_net(datamodule), datamodule, fit, {}, tmp_path, seed=0)
    assert requested == ["full_test", "val", "full_test"]  # the last weights' validation only
    net = _linear_net(datamodule)
    net.load_state_dict(fit.last_state)
    images, target = datamodule.transform_batch(datamodule._splits["val"], training=False)
    with torch.no_grad():
        predicted = net(images).argmax(1)
    assert metrics["last"]["val_gmean"] == pytest.approx(
        geometric_mean_score(target.numpy(), predicted.numpy()), abs=1e-6
    )
    assert metrics["val_gmean"] == 0.125


def test_selected_weights_that_are_the_last_ones_are_judged_once(tmp_path, monkeypatch):
    datamodule = _datamodule(tmp_path)
    requested = _recorded_splits(datamodule, monkeypatch)
    state = _centroid_state(datamodule, 0.3)
    fit = FitResult(
        selected_state=state,
        last_state={k: v.clone() for k, v in state.items()},
        selected_epoch=4,
        epochs=4,
        fit_time_s=1.0,
    )
    metrics = evaluate_member(_linear_net(datamodule), datamodule, fit, {}, tmp_path, seed=3)
    assert requested == ["full_test", "val"]
    selected = {k: v for k, v in metrics.items() if k in metrics["last"]}
    assert metrics["last"] == selected and metrics["last"] is not metrics
    assert metrics["last"]["full_test"] == metrics["full_test"]
    arrays = np.load(RunFolder(tmp_path).predictions)
    for test_set in ("test", "full_test"):
        for selected_key, last_key in zip(
            PREDICTION_KEYS[("selected", test_set)],
            PREDICTION_KEYS[("last", test_set)],
            strict=True,
        ):
            assert np.array_equal(arrays[selected_key], arrays[last_key])
