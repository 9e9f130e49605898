"""The command line end to end: the files a run writes, multiruns, bad input, W&B offline."""

import json
import math
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from imblearn.metrics import geometric_mean_score
from omegaconf import OmegaConf
from sklearn.metrics import f1_score, roc_auc_score

from imbloss.runs.environment import bf16_isa, cpu_model

from conftest import FAST_OVERRIDES, requires_fashion_mnist
from helpers.wandb_records import history_values

NEW_KEYS = {"full_test", "gmean_ci95", "auc_ci95", "last", "selected_epoch", "batch_stats"}
SPEC_KEYS = {
    "gmean",
    "auc",
    "f1",
    "acc",
    "per_class_recall",
    "minority_acc",
    "majority_acc",
    "fit_time_s",
    "epochs",
    "loss",
    "dataset",
    "ir",
    "seed",
    "train_class_counts",
    "val_class_counts",
    "test_class_counts",
}
Runner = Callable[..., subprocess.CompletedProcess[str]]


def _run_dirs(logs: Path) -> list[Path]:
    return sorted(p.parent for p in logs.rglob(".hydra"))


def _check_figures(figures: dict, target: np.ndarray, probs: np.ndarray) -> None:
    """The figures of one evaluation recomputed from its predictions (sklearn, imblearn)."""
    assert probs.shape == (len(target), len(figures["per_class_recall"]))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    pred = probs.argmax(axis=1)
    assert figures["gmean"] == pytest.approx(geometric_mean_score(target, pred), abs=1e-6)
    assert figures["f1"] == pytest.approx(f1_score(target, pred, average="macro"), abs=1e-6)
    assert figures["acc"] == pytest.approx(float(np.mean(pred == target)), abs=1e-6)
    recall = [float(np.mean(pred[target == j] == j)) for j in range(probs.shape[1])]
    assert figures["per_class_recall"] == pytest.approx(recall, abs=1e-6)
    auc = (
        roc_auc_score(target, probs[:, 1])
        if probs.shape[1] == 2
        else roc_auc_score(target, probs, multi_class="ovr")
    )
    assert figures["auc"] == pytest.approx(auc, abs=1e-5)
    for name in ("gmean", "auc"):
        low, high = figures[f"{name}_ci95"]
        assert low <= figures[name] + 1e-9 and figures[name] <= high + 1e-9


def _check_run_folder(run: Path) -> dict:
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics.keys() >= SPEC_KEYS | NEW_KEYS
    assert metrics["status"] == "ok"
    predictions = np.load(run / "predictions.npz")
    target, full_target = predictions["target"], predictions["full_target"]
    assert len(target) == sum(metrics["test_class_counts"])
    assert np.bincount(full_target).tolist() == metrics["full_test"]["class_counts"]
    _check_figures(metrics, target, predictions["probs"])
    _check_figures(metrics["full_test"], full_target, predictions["full_probs"])
    _check_figures(metrics["last"], target, predictions["last_probs"])
    _check_figures(metrics["last"]["full_test"], full_target, predictions["last_full_probs"])
    assert 1 <= metrics["selected_epoch"] <= metrics["epochs"]
    assert metrics["batch_stats"]["batches"] >= metrics["epochs"]
    assert (run / ".hydra" / "config.yaml").is_file()
    assert (run / "csv" / "metrics.csv").is_file()
    assert (run / "checkpoints" / "best.ckpt").is_file()
    return metrics


def test_one_epoch_run_writes_the_documented_files(run_cli: Runner, tmp_path: Path) -> None:
    noise = ("sampler=oversample", "dataset.label_noise=0.1")
    result = run_cli([*FAST_OVERRIDES, "loss=wce", "seed=3", *noise])
    assert result.returncode == 0, result.stderr
    (run,) = _run_dirs(tmp_path / "logs")
    metrics = _check_run_folder(run)
    assert (metrics["loss"], metrics["dataset"], metrics["ir"], metrics["seed"]) == (
        "wce",
        "synthetic",
        10,
        3,
    )
    assert metrics["epochs"] == 1 and metrics["selected_epoch"] == 1
    # synthetic step IR=10 trains [18, 180] * 5 samples: 0.1 * 180 flipped per majority class
    assert metrics["label_noise_flipped"] == [0, 18] * 5
    assert sum(metrics["train_class_counts"]) == 990
    # oversample: every class at the largest (noisy) count, batch 100
    largest = max(metrics["train_class_counts"])
    steps = math.ceil(10 * largest / 100)
    assert (metrics["sampler"], metrics["batch_size"]) == ("oversample", 100)
    assert metrics["steps_per_epoch"] == steps
    stats = metrics["batch_stats"]
    assert stats["batches"] == steps
    assert stats["mean_per_batch"] == pytest.approx([largest / steps] * 10)
    assert metrics["full_test"]["class_counts"] == [50] * 10
    config = OmegaConf.load(run / ".hydra" / "config.yaml")
    assert config.loss.name == "wce" and config.trainer.max_epochs == 1
    assert "G-mean" in result.stdout and str(run) in result.stdout
    # Lightning's log lines reach train.log once each, without its advertisements
    log = (run / "train.log").read_text()
    assert log.count("GPU available:") == 1 and "💡 Tip" not in log + result.stdout
    # where it ran
    env = metrics["environment"]
    assert set(env) == {"commit", "torch", "lightning", "device", "cpu_id", "bf16_isa", "threads"}
    assert env["torch"] == torch.__version__ and env["threads"] == metrics["threads"]
    assert env["device"] == cpu_model() and env["bf16_isa"] == bf16_isa()
    assert env["commit"] is None or len(env["commit"].removesuffix("-dirty")) == 40


def test_multirun_gives_one_folder_per_point(run_cli: Runner, tmp_path: Path) -> None:
    result = run_cli(["-m", *FAST_OVERRIDES, "loss=ce,wce,pf", "ir=10,100"])
    assert result.returncode == 0, result.stderr
    runs = _run_dirs(tmp_path / "logs" / "multiruns")
    assert len(runs) == 6
    points = {(m["loss"], m["ir"]) for m in map(_check_run_folder, runs)}
    assert points == {(loss, ir) for loss in ("ce", "wce", "pf") for ir in (10, 100)}


NO_PREFLIGHT = "~hydra.callbacks.sweep_preflight"


def test_a_failing_member_does_not_stop_the_sweep(run_cli: Runner, tmp_path: Path) -> None:
    # the job-level safety net, under the pre-flight check (which would stop this sweep first)
    result = run_cli(["-m", *FAST_OVERRIDES, "loss=ce", "ir=0.5,10", NO_PREFLIGHT])
    assert result.returncode == 0, result.stderr
    runs = _run_dirs(tmp_path / "logs" / "multiruns")
    assert len(runs) == 2
    failed = [r for r in runs if (r / "error.json").exists()]
    assert len(failed) == 1
    error = json.loads((failed[0] / "error.json").read_text())
    assert error["status"] == "failed" and "ir=0.5" in error["error"]
    (ok,) = set(runs) - set(failed)
    assert _check_run_folder(ok)["ir"] == 10


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("ir=0.5", ["ir=0.5", "accepted"]),
        ("ir=abc", ["ir=abc", "accepted"]),
        ("loss=nope", ["nope", "Available options", "pf"]),
        ("dataset=imagenet", ["imagenet", "Available options", "fashion_mnist"]),
        ("model=vgg", ["vgg", "Available options", "fmnist_cnn"]),
        ("loss.gama=3", ["gama"]),
        ("dataset.label_noise=2", ["dataset.label_noise=2", "accepted"]),
    ],
)
def test_bad_input_stops_with_one_message_and_touches_nothing(
    run_cli: Runner, tmp_path: Path, override: str, named: list[str]
) -> None:
    logs = tmp_path / "logs"
    good = run_cli([*FAST_OVERRIDES, "loss=ce"])
    assert good.returncode == 0, good.stderr
    before = {p: p.stat().st_mtime_ns for p in logs.rglob("*") if p.is_file()}
    bad = run_cli([*FAST_OVERRIDES, override])
    assert bad.returncode != 0
    for word in named:
        assert word in bad.stderr, bad.stderr
    assert "Traceback" not in bad.stderr
    after = {p: p.stat().st_mtime_ns for p in logs.rglob("*") if p.is_file()}
    assert {p: after[p] for p in before} == before
    assert not [p for p in after if p not in before and p.name == "metrics.json"]


def test_wandb_without_key_runs_offline(run_cli: Runner, tmp_path: Path) -> None:
    result = run_cli([*FAST_OVERRIDES, "logger=wandb"], NETRC=str(tmp_path / "no-netrc"))
    assert result.returncode == 0, result.stderr
    (run,) = _run_dirs(tmp_path / "logs")
    offline_runs = list((run / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 1
    assert f"wandb sync {offline_runs[0]}" in result.stdout
    _check_run_folder(run)
    (records,) = offline_runs[0].glob("run-*.wandb")
    assert history_values(records, "lr") == ["0.001"]  # every epoch's rate, as in the CSV log


@pytest.mark.slow
@requires_fashion_mnist
def test_fashion_mnist_multirun_one_epoch(run_cli: Runner, tmp_path: Path) -> None:
    result = run_cli(
        [
            "-m",
            "loss=ce,wce,pf",
            "ir=10,100",
            "trainer.max_epochs=1",
            "trainer.enable_progress_bar=false",
        ]
    )
    assert result.returncode == 0, result.stderr
    runs = _run_dirs(tmp_path / "logs" / "multiruns")
    assert len(runs) == 6
    # even classes keep 1/IR of 6000 train / 1000 test images; 10 % of train goes to validation
    expected = {
        10: ([540, 5400] * 5, [60, 600] * 5, [100, 1000] * 5),
        100: ([54, 5400] * 5, [6, 600] * 5, [10, 1000] * 5),
    }
    for metrics in map(_check_run_folder, runs):
        assert metrics["dataset"] == "fashion_mnist"
        counts = (
            metrics["train_class_counts"],
            metrics["val_class_counts"],
            metrics["test_class_counts"],
        )
        assert counts == expected[metrics["ir"]]
        assert metrics["full_test"]["class_counts"] == [1000] * 10


@pytest.mark.slow
@requires_fashion_mnist
def test_fashion_mnist_run_judges_the_whole_test_split(run_cli: Runner, tmp_path: Path) -> None:
    result = run_cli(
        [
            "loss=pf",
            "trainer.max_epochs=2",
            "+trainer.limit_train_batches=3",
            "trainer.enable_progress_bar=false",
        ]
    )
    assert result.returncode == 0, result.stderr
    (run,) = _run_dirs(tmp_path / "logs")
    metrics = _check_run_folder(run)
    assert metrics["full_test"]["class_counts"] == [1000] * 10
    assert metrics["test_class_counts"] == [10, 1000] * 5
    assert metrics["batch_stats"]["batches"] == 6
    assert "G-mean, whole test split" in result.stdout
