"""The long-tail literature's presets (experiment=cifar10_lt_sgd, cifar100_lt_sgd): the recipe,
the learning rate of every epoch, the exp profile's counts and shot groups, and a short run of each
on small files in the CIFAR format."""

from __future__ import annotations

import csv
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra.utils import instantiate
from omegaconf import DictConfig

from imbloss.data.protocols import exp_profile
from imbloss.metrics import ShotThresholds
from imbloss.pipeline import train

from helpers.cifar import write_fake_cifar10, write_fake_cifar100

PRESETS = {"cifar10_lt_sgd": ("cifar10", 10), "cifar100_lt_sgd": ("cifar100", 100)}
# small files in the CIFAR format: per-class training images (n_max of the exp profile) and test
# images, and the IR: fewer than 128 training images, one batch of the recipe (ResNet-32 takes
# seconds a batch on a loaded 2-core CPU)
FAKE = {"cifar10": (write_fake_cifar10, 20, 5, 10), "cifar100": (write_fake_cifar100, 2, 1, 2)}
OFFLINE = ("dataset.verify=false", "dataset.download=false", "trainer.enable_progress_bar=false")


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("loss", ["ce", "ldam", "wldam"])
def test_the_preset_is_ldam_drws_recipe(
    compose_train_cfg: Callable[..., DictConfig], preset: str, loss: str
) -> None:
    cfg = compose_train_cfg(f"experiment={preset}", f"loss={loss}")
    dataset, classes = PRESETS[preset]
    assert (cfg.dataset.name, cfg.dataset.protocol, cfg.dataset.augment) == (dataset, "exp", True)
    assert (cfg.dataset.batch_size, cfg.trainer.max_epochs) == (128, 200)
    assert cfg.optimizer._target_ == "torch.optim.SGD"
    assert (cfg.optimizer.lr, cfg.optimizer.momentum, cfg.optimizer.weight_decay) == (
        0.1,
        0.9,
        2e-4,
    )
    net = instantiate(cfg.model)(input_shape=(3, 32, 32), num_classes=classes)
    assert type(net).__name__ == "ResNet32"
    # LDAM-DRW's code trains the LDAM losses on cosine logits, the others on a linear layer
    assert type(net.classifier).__name__ == ("CosineClassifier" if "ldam" in loss else "Linear")
    if loss == "wldam":
        assert cfg.loss.drw_epoch == 160


@pytest.mark.parametrize("preset", PRESETS)
def test_the_presets_learning_rate_per_epoch_by_hand(
    compose_train_cfg: Callable[..., DictConfig], preset: str
) -> None:
    cfg = compose_train_cfg(f"experiment={preset}")
    schedule = instantiate(cfg.scheduler)
    lr = [cfg.optimizer.lr * schedule.factor(epoch) for epoch in range(cfg.trainer.max_epochs)]
    # warm-up 0.1 * (e + 1) / 5, then 0.1; x 0.01 from epoch 160, x 0.0001 from epoch 180
    expected = [0.02, 0.04, 0.06, 0.08] + [0.1] * 156 + [0.001] * 20 + [0.00001] * 20
    assert lr == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("n_max", "classes", "ir", "total", "groups"),
    [
        # CIFAR-10-LT: 5000 ... 50 at IR=100 (no class below 20: few-shot accuracy is null)
        (5000, 10, 100, 12_406, (8, 2, 0)),
        (5000, 10, 10, 20_431, (10, 0, 0)),
        # CIFAR-100-LT at IR=100: the literature's 35 many-, 35 medium-, 30 few-shot classes
        (500, 100, 100, 10_847, (35, 35, 30)),
        (500, 100, 10, 19_573, (69, 31, 0)),  # class 69: floor(500 * 10^(-69/99)) = 100
    ],
)
def test_exp_profile_counts_and_shot_groups(n_max, classes, ir, total, groups) -> None:
    counts = exp_profile(n_max, classes, ir)
    assert sum(counts) == total and (counts[0], counts[-1]) == (n_max, n_max // ir)
    found = ShotThresholds().groups(counts)
    assert tuple(len(found[g]) for g in ("many", "medium", "few")) == groups


def _logged_lr(run: Path) -> list[float]:
    with (run / "csv" / "metrics.csv").open() as handle:
        return [float(row["lr"]) for row in csv.DictReader(handle) if row.get("lr")]


def _check_lt_run(run: Path, preset: str, epochs: int) -> dict:
    """The files of a short run of ``preset``: exp counts, lr per epoch, shot figures."""
    metrics = json.loads((run / "metrics.json").read_text())
    dataset, classes = PRESETS[preset]
    _, per_class_train, per_class_test, ir = FAKE[dataset]
    assert metrics["protocol_train_class_counts"] == exp_profile(per_class_train, classes, ir)
    split = zip(metrics["train_class_counts"], metrics["val_class_counts"], strict=True)
    assert [t + v for t, v in split] == metrics["protocol_train_class_counts"]
    assert metrics["test_class_counts"] == [per_class_test] * classes  # balanced, whole
    assert _logged_lr(run) == pytest.approx([0.02, 0.04][:epochs], rel=1e-12)
    groups = ShotThresholds().groups(metrics["protocol_train_class_counts"])
    assert metrics["shots"] == {"few": 20, "many": 100, "classes": groups}
    for section in (metrics, metrics["full_test"], metrics["last"], metrics["last"]["full_test"]):
        recall = section["per_class_recall"]
        for group, classes_in in groups.items():
            expected = sum(recall[j] for j in classes_in) / len(classes_in) if classes_in else None
            assert section[f"{group}_shot_acc"] == pytest.approx(expected)
        assert section["top1_error"] == pytest.approx(1 - section["acc"])
    return metrics


@pytest.mark.parametrize(
    ("preset", "loss"), [("cifar10_lt_sgd", "ce"), ("cifar100_lt_sgd", "ldam")]
)
def test_one_epoch_of_each_preset_on_cifar_format_files(
    compose_train_cfg: Callable[..., DictConfig], tmp_path: Path, preset: str, loss: str
) -> None:
    dataset, _ = PRESETS[preset]
    write, per_class_train, per_class_test, ir = FAKE[dataset]
    write(tmp_path / "data", per_class_train, per_class_test)
    cfg = compose_train_cfg(
        f"experiment={preset}", f"loss={loss}", f"ir={ir}", "trainer.max_epochs=1", *OFFLINE
    )
    metrics = train(cfg)
    assert (metrics["model"], metrics["epochs"], metrics["batch_size"]) == ("ResNet32", 1, 128)
    _check_lt_run(tmp_path / "run", preset, epochs=1)


def test_the_command_line_runs_the_cifar10_preset_with_wldam(run_cli, tmp_path: Path) -> None:
    write, per_class_train, per_class_test, ir = FAKE["cifar10"]
    write(tmp_path / "data", per_class_train, per_class_test)
    run = tmp_path / "lt"
    args = ["experiment=cifar10_lt_sgd", "loss=wldam", f"ir={ir}", "trainer.max_epochs=1"]
    result: subprocess.CompletedProcess[str] = run_cli([*args, *OFFLINE, f"hydra.run.dir={run}"])
    assert result.returncode == 0, result.stderr
    metrics = _check_lt_run(run, "cifar10_lt_sgd", epochs=1)
    # re-weighting from 0.8 of the schedule: epoch 160 of the preset's 200, epoch 0 of 1 here
    assert metrics["loss"] == "wldam" and metrics["hparams"]["drw_epoch"] == 0
    assert (run / "checkpoints" / "best.ckpt").is_file()
    assert "lr" in (run / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
