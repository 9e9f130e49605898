"""Learning-rate schedules: the rate of every epoch, as logged, kept across a resume, and the
configurations that are refused."""

from __future__ import annotations

import csv
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from imbloss.data import ImbalancedDataModule
from imbloss.errors import ConfigError
from imbloss.lr_schedules import WarmupCosine, WarmupMultiStep
from imbloss.module import ImbalancedClassifier
from imbloss.pipeline import train
from imbloss.stacked.engine import fit_stack

# The synthetic task and a small MLP: seconds per run
TINY = (
    "dataset=synthetic",
    "model=mlp",
    "model.hidden=[16]",
    "ir=10",
    "loss=ce",
    "trainer.enable_progress_bar=false",
)
# SGD at lr 0.1, warm-up over 2 epochs, x0.1 from epoch 3: 0.1 · 1/2, 0.1 · 2/2, 0.1, 0.1 · 0.1
SCHEDULE = (
    "optimizer=sgd",
    "scheduler=warmup_multistep",
    "scheduler.warmup_epochs=2",
    "scheduler.milestones=[3]",
    "scheduler.gamma=0.1",
    "trainer.max_epochs=4",
    "trainer.deterministic=true",
)
EXPECTED_LR = [0.05, 0.1, 0.1, 0.01]
# What may differ between a continued run and an uninterrupted one (as in tests/test_resume.py)
NOT_COMPARED = {"fit_time_s", "stack_fit_time_s", "evaluation_time_s", "checkpoint"}


def logged_lr(run: Path) -> list[float]:
    """The ``lr`` column of a run's ``csv/metrics.csv``, one value per epoch."""
    with (run / "csv" / "metrics.csv").open() as handle:
        return [float(row["lr"]) for row in csv.DictReader(handle) if row.get("lr")]


def test_ldam_drw_schedule_by_hand() -> None:
    schedule = WarmupMultiStep(warmup_epochs=5, milestones=[160, 180], gamma=0.01)
    lr = [0.1 * schedule.factor(epoch) for epoch in range(200)]
    expected = [0.02, 0.04, 0.06, 0.08] + [0.1] * 156 + [0.001] * 20 + [0.00001] * 20
    assert lr == pytest.approx(expected, rel=1e-12)


def test_cosine_schedule_by_hand() -> None:
    schedule = WarmupCosine(total_epochs=6, warmup_epochs=2, min_factor=0.1)
    # warm-up 1/2, 2/2; then 0.1 + 0.9 (1 + cos(pi k / 4)) / 2 for k = 0..3
    expected = [0.5, 1.0, 1.0, 0.1 + 0.45 * (1 + math.sqrt(0.5)), 0.55, 0.1 + 0.45 * (1 - 0.5**0.5)]
    assert [schedule.factor(e) for e in range(6)] == pytest.approx(expected, rel=1e-12)
    assert WarmupCosine(total_epochs=4).factor(0) == 1.0


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: WarmupMultiStep(milestones=[180, 160]), r"milestones=\[180, 160\] is invalid"),
        (lambda: WarmupMultiStep(warmup_epochs=5, milestones=[3]), r"accepted: an integer >= 5"),
        (lambda: WarmupMultiStep(milestones=160), "is not a list; accepted: a list of epochs"),
        (lambda: WarmupMultiStep(gamma=0), r"scheduler.gamma=0 is invalid; accepted: a number > 0"),
        (lambda: WarmupMultiStep(warmup_epochs=-1), "warmup_epochs=-1 is out of range"),
        (lambda: WarmupCosine(total_epochs=5, warmup_epochs=5), "total_epochs=5 is out of range"),
        (lambda: WarmupCosine(total_epochs=5, min_factor=2), "min_factor=2 is invalid"),
    ],
)
def test_bad_schedules_are_config_errors(make: Callable[[], object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make()


def test_none_is_the_default_and_leaves_the_optimizer_alone(
    compose_train_cfg: Callable[..., DictConfig],
) -> None:
    cfg = compose_train_cfg()
    assert "scheduler" in cfg and cfg.scheduler is None  # as a folder claimed before the group
    module = ImbalancedClassifier(
        nn.Linear(2, 2), nn.CrossEntropyLoss(), instantiate(cfg.optimizer)
    )
    assert isinstance(module.configure_optimizers(), torch.optim.Adam)  # no scheduler at all


@pytest.mark.parametrize(
    ("overrides", "target"),
    [
        (("scheduler=warmup_multistep",), "WarmupMultiStep"),
        (("scheduler=cosine", "trainer.max_epochs=30"), "WarmupCosine"),
    ],
)
def test_every_scheduler_config_builds(
    compose_train_cfg: Callable[..., DictConfig], overrides: tuple[str, ...], target: str
) -> None:
    schedule = instantiate(compose_train_cfg(*overrides).scheduler)
    assert type(schedule).__name__ == target


def test_every_epochs_rate_is_logged_and_survives_a_stop_and_continue(
    compose_train_cfg: Callable[..., DictConfig], tmp_path: Path
) -> None:
    whole, stopped = tmp_path / "whole", tmp_path / "run"
    expected = train(compose_train_cfg(*TINY, *SCHEDULE))
    shutil.move(tmp_path / "run", whole)
    assert logged_lr(whole) == pytest.approx(EXPECTED_LR, rel=1e-12)

    cfg = compose_train_cfg(*TINY, *SCHEDULE, "stop_at_epoch=2")
    assert train(cfg)["stopped_at_epoch"] == 2  # last.ckpt after epoch 2, the scheduler in it
    continued = train(compose_train_cfg(*TINY, *SCHEDULE))
    assert logged_lr(stopped) == logged_lr(whole)
    assert {k: v for k, v in continued.items() if k not in NOT_COMPARED} == {
        k: v for k, v in expected.items() if k not in NOT_COMPARED
    }


def test_the_stacked_engine_sets_and_logs_the_same_rates(tmp_path: Path) -> None:
    datamodule = ImbalancedDataModule("synthetic", str(tmp_path), ir=10, batch_size=100)
    datamodule.prepare_data()
    datamodule.setup("fit")
    schedule = WarmupMultiStep(warmup_epochs=2, milestones=[3], gamma=0.1)
    modules = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Flatten(), nn.Linear(64, datamodule.num_classes))
        optimizer = lambda p: torch.optim.SGD(p, lr=0.1)  # noqa: E731
        modules.append(
            ImbalancedClassifier(net, nn.CrossEntropyLoss(), optimizer, lr_schedule=schedule)
        )
    logged: list[list[float]] = []
    fit_stack(
        modules,
        [0, 1],
        datamodule,
        max_epochs=4,
        device=torch.device("cpu"),
        vectorize=False,
        on_epoch_end=lambda epoch, step, figures: logged.append(
            [f["lr"] for f in figures.values()]
        ),
    )
    assert logged == [[lr, lr] for lr in (0.1 * schedule.factor(e) for e in range(4))]
    assert [row[0] for row in logged] == pytest.approx(EXPECTED_LR, rel=1e-12)


def test_a_run_without_schedule_logs_its_constant_rate(
    compose_train_cfg: Callable[..., DictConfig], tmp_path: Path
) -> None:
    cfg = compose_train_cfg(*TINY, "trainer.max_epochs=2")
    train(cfg)
    assert logged_lr(tmp_path / "run") == [0.001, 0.001]  # Adam's lr, exactly


def test_a_bad_schedule_in_a_multirun_stops_it_before_training(run_cli, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    args = ["-m", *TINY, "scheduler=warmup_multistep", "scheduler.gamma=0.1,-1"]
    result = run_cli([*args, f"hydra.sweep.dir={sweep}"])
    assert result.returncode == 2, result.stderr
    assert "imbloss: error: 1 of 2 jobs would fail; nothing was trained:" in result.stderr
    assert (
        "  job 1 (scheduler.gamma=-1): scheduler.gamma=-1 is invalid; accepted: a number > 0"
    ) in result.stderr
    assert not list(sweep.rglob("metrics.json"))
