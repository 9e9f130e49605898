"""hydra/launcher=stacked against the basic launcher, job by job, on the real command line."""

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from imbloss.module import ImbalancedClassifier

from conftest import FAST_OVERRIDES

Runner = Callable[..., subprocess.CompletedProcess[str]]
# Float tolerance of "equal": the stacked forward is the same arithmetic in another order
# (grouped convolutions, batched matrix products); differences measured here are ~1e-7.
PROB_ATOL = 1e-5
FIGURE_ATOL = 1e-6
FIGURES = ("gmean", "auc", "f1", "acc", "minority_acc", "majority_acc", "val_gmean", "val_auc")
SYNTHETIC = ("dataset=synthetic", "ir=10", "trainer.enable_progress_bar=false")
# fmnist_cnn on the synthetic data for two epochs, without dropout (whose masks a stacked member
# draws differently from a separate run)
FMNIST_CNN_TWO_EPOCHS = (
    *SYNTHETIC,
    "model=fmnist_cnn",
    "model.dropout=0",
    "optimizer.lr=0.01",
    "trainer.max_epochs=2",
)


def _jobs(sweep_dir: Path) -> list[Path]:
    return sorted((p for p in sweep_dir.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))


def _files(job: Path) -> set[str]:
    return {str(p.relative_to(job)) for p in job.rglob("*") if p.is_file()}


def _csv_rows(job: Path) -> list[list[str]]:
    return [line.split(",") for line in (job / "csv" / "metrics.csv").read_text().splitlines()]


def _load_as_classifier(job: Path) -> ImbalancedClassifier:
    """The job's ``best.ckpt`` loaded by ``ImbalancedClassifier`` like any Lightning checkpoint."""
    cfg = OmegaConf.load(job / ".hydra" / "config.yaml")
    net = instantiate(cfg.model)(input_shape=(1, 8, 8), num_classes=10)
    return ImbalancedClassifier.load_from_checkpoint(
        job / "checkpoints" / "best.ckpt",
        net=net,
        loss_fn=nn.CrossEntropyLoss(),
        optimizer=torch.optim.Adam,
        weights_only=True,
    )


def _compare_launchers(
    run_cli: Runner,
    tmp_path: Path,
    args: list[str],
    passes: int,
    launcher: tuple[str, ...] = (),
) -> list:
    """Run ``args`` as a multirun under both launchers (``launcher``: settings of the stacked
    one); assert job-by-job agreement (probabilities within ``PROB_ATOL``, figures within
    ``FIGURE_ATOL``); return the stacked jobs' ``metrics.json``."""
    basic_dir, stacked_dir = tmp_path / "basic", tmp_path / "stacked"
    basic = run_cli(["-m", *args, f"hydra.sweep.dir={basic_dir}"])
    assert basic.returncode == 0, basic.stderr
    stacked = run_cli(
        ["-m", *args, f"hydra.sweep.dir={stacked_dir}", "hydra/launcher=stacked", *launcher]
    )
    assert stacked.returncode == 0, stacked.stderr
    assert f"{passes} pass(es)" in stacked.stdout + stacked.stderr
    stacked_metrics = []
    jobs = _jobs(basic_dir)
    assert [j.name for j in jobs] == [j.name for j in _jobs(stacked_dir)]
    for job in jobs:
        other = stacked_dir / job.name
        assert _files(job) == _files(other)
        single, stack = (json.loads((j / "metrics.json").read_text()) for j in (job, other))
        assert (single["engine"], single["stack_size"]) == ("single", 1)
        assert stack["engine"] == "stacked"
        assert stack["fit_time_s"] == pytest.approx(stack["stack_fit_time_s"] / stack["stack_size"])
        for key in ("loss", "hparams", "seed", "epochs", "selected_epoch", "batch_stats"):
            assert stack[key] == single[key], key
        for key in ("test_class_counts", "per_class_recall"):
            assert stack[key] == single[key], key
        for key in FIGURES[:4]:
            assert stack["last"][key] == pytest.approx(single["last"][key], abs=FIGURE_ATOL), key
            assert stack["full_test"][key] == pytest.approx(
                single["full_test"][key], abs=FIGURE_ATOL
            )
        for key in FIGURES:
            assert stack[key] == pytest.approx(single[key], abs=FIGURE_ATOL), (job.name, key)
        arrays = [np.load(j / "predictions.npz") for j in (job, other)]
        assert set(arrays[1].files) == set(arrays[0].files) >= {"probs", "last_probs"}
        for key in arrays[0].files:  # selected and last weights, both test sets
            np.testing.assert_allclose(arrays[1][key], arrays[0][key], rtol=0, atol=PROB_ATOL)
        ckpts = [torch.load(j / "checkpoints/best.ckpt", weights_only=True) for j in (job, other)]
        assert (ckpts[1]["epoch"], ckpts[1]["global_step"]) == (
            ckpts[0]["epoch"],
            ckpts[0]["global_step"],
        ), f"job {job.name}: another epoch selected"
        _load_as_classifier(other)
        rows = [_csv_rows(j) for j in (job, other)]
        assert rows[1][0] == rows[0][0]  # same columns
        assert [r[:2] for r in rows[1]] == [r[:2] for r in rows[0]]  # same epoch, step rows
        np.testing.assert_allclose(
            [[float(v) if v else np.nan for v in r[2:]] for r in rows[1][1:]],
            [[float(v) if v else np.nan for v in r[2:]] for r in rows[0][1:]],
            atol=1e-5,
        )
        stacked_metrics.append(stack)
    return stacked_metrics


@pytest.mark.slow
def test_mlp_sweep_agrees_job_by_job_across_passes(run_cli: Runner, tmp_path: Path) -> None:
    # 6 jobs of one group (three losses, wldam's deferred re-weighting from epoch 2, two seeds),
    # cut by max_stack=4 into two passes of 3; the vmap forward (the CPU default is the loop)
    metrics = _compare_launchers(
        run_cli,
        tmp_path,
        [
            *SYNTHETIC,
            "model=mlp",
            "model.hidden=[64]",
            "optimizer.lr=0.01",
            "trainer.max_epochs=3",
            "loss=wce,wldam,pf",
            "seed=0,1",
        ],
        passes=2,
        launcher=("hydra.launcher.max_stack=4", "hydra.launcher.forward=vmap"),
    )
    assert [m["stack_size"] for m in metrics] == [3] * 6
    assert len({m["stack_fit_time_s"] for m in metrics}) == 2  # one fit time per pass
    assert any(m["gmean"] > 0 for m in metrics)  # a meaningful comparison, not all-zero recalls


def test_fmnist_cnn_sweep_agrees_job_by_job_across_passes(run_cli: Runner, tmp_path: Path) -> None:
    # a mixed group (PF-loss; LDAM with deferred re-weighting from epoch 1; two seeds) in two
    # passes of 2 (max_stack=3)
    metrics = _compare_launchers(
        run_cli,
        tmp_path,
        [*FMNIST_CNN_TWO_EPOCHS, "loss=wldam,pf", "seed=0,1"],
        passes=2,
        launcher=("hydra.launcher.max_stack=3",),
    )
    assert [m["stack_size"] for m in metrics] == [2] * 4
    assert any(m["gmean"] > 0 for m in metrics)


@pytest.mark.slow
def test_a_learning_rate_schedule_stacks_and_agrees_job_by_job(
    run_cli: Runner, tmp_path: Path
) -> None:
    # SGD with warm-up over 2 epochs and x0.1 from epoch 2: the stacked pass sets the rates the
    # single runs' LambdaLR gives (lr column included in the CSV comparison)
    schedule = ("optimizer=sgd", "scheduler=warmup_multistep", "scheduler.warmup_epochs=1",
                "scheduler.milestones=[2]", "scheduler.gamma=0.1")  # fmt: skip
    args = [*SYNTHETIC, "model=mlp", "model.hidden=[16]", *schedule, "trainer.max_epochs=3"]
    metrics = _compare_launchers(run_cli, tmp_path, [*args, "loss=ce,pf"], passes=1)
    assert [m["stack_size"] for m in metrics] == [2, 2]
    for job in _jobs(tmp_path / "stacked"):
        rows = _csv_rows(job)
        column = rows[0].index("lr")
        assert [float(r[column]) for r in rows[1:] if r[column]] == [0.1, 0.1, 0.1 * 0.1]


def test_bf16_sweep_agrees_job_by_job(run_cli: Runner, tmp_path: Path) -> None:
    # bf16 autocast in the forward passes, losses in float32: members train as separate runs do
    metrics = _compare_launchers(
        run_cli,
        tmp_path,
        [*FMNIST_CNN_TWO_EPOCHS, "trainer.precision=bf16-mixed", "loss=pf,wce", "threads=1"],
        passes=1,
    )
    # the stacked pass runs on the jobs' thread count, as each separate run does
    assert [(m["stack_size"], m["precision"], m["threads"]) for m in metrics] == [
        (2, "bf16-mixed", 1)
    ] * 2


def test_invalid_member_fails_alone_and_a_lone_job_runs_single(
    run_cli: Runner, tmp_path: Path
) -> None:
    sweep = tmp_path / "sweep"
    # ir=5 and ir=10 are two groups; in each, gamma=-1 is invalid (fails alone with error.json:
    # the job-level safety net, under the pre-flight check, which would stop this sweep first)
    result = run_cli(
        [
            "-m",
            "~hydra.callbacks.sweep_preflight",
            *FAST_OVERRIDES,
            "model=mlp",
            "model.hidden=[16]",
            "ir=5,10",
            "loss=focal",
            "loss.gamma=2.0,-1.0",
            f"hydra.sweep.dir={sweep}",
            "hydra/launcher=stacked",
        ]
    )
    assert result.returncode == 0, result.stderr
    jobs = _jobs(sweep)
    assert len(jobs) == 4
    failed = [j for j in jobs if (j / "error.json").exists()]
    assert len(failed) == 2
    for job in failed:
        error = json.loads((job / "error.json").read_text())
        assert error["status"] == "failed" and "gamma=-1.0" in error["error"]
        assert not (job / "metrics.json").exists()
    trained = [json.loads((j / "metrics.json").read_text()) for j in jobs if j not in failed]
    assert sorted((m["ir"], m["engine"], m["stack_size"]) for m in trained) == [
        (5.0, "stacked", 1),
        (10.0, "stacked", 1),
    ]
    lone = tmp_path / "lone"
    result = run_cli(
        ["-m", *FAST_OVERRIDES, "loss=ce", f"hydra.sweep.dir={lone}", "hydra/launcher=stacked"]
    )
    assert result.returncode == 0, result.stderr
    metrics = json.loads((lone / "0" / "metrics.json").read_text())
    assert (metrics["engine"], metrics["stack_size"]) == ("single", 1)


def test_every_member_logs_its_own_wandb_run_in_the_sweep_group(
    run_cli: Runner, tmp_path: Path
) -> None:
    sweep = tmp_path / "grid-w7"  # the W&B group: the multirun folder's name
    result = run_cli(
        [
            "-m",
            *FAST_OVERRIDES,
            "model=mlp",
            "model.hidden=[16]",
            "loss=ce,pf",
            "logger=wandb",
            f"hydra.sweep.dir={sweep}",
            "hydra/launcher=stacked",
        ],
        NETRC=str(tmp_path / "no-netrc"),  # no API key: offline
    )
    assert result.returncode == 0, result.stderr
    names = {"ce": b"ce-synthetic-ir10-seed0", "pf": b"pf-synthetic-ir10-seed0"}
    for job in _jobs(sweep):
        metrics = json.loads((job / "metrics.json").read_text())
        assert (metrics["engine"], metrics["stack_size"]) == ("stacked", 2)
        (offline,) = (job / "wandb").glob("offline-run-*")  # one run per member, in its folder
        assert f"wandb sync {offline}" in result.stdout
        (records,) = offline.glob("run-*.wandb")
        data = records.read_bytes()  # protobuf records: strings stored as they are
        own, other = names[metrics["loss"]], names["pf" if metrics["loss"] == "ce" else "ce"]
        assert own in data and other not in data and b"grid-w7" in data
        for value in (metrics["gmean"], metrics["full_test"]["auc"], metrics["last"]["gmean"]):
            assert json.dumps(value).encode() in data  # its own final figures
        assert b"sweep/ended" in data and b"sweep/jobs" in data  # the multirun's progress


def test_members_that_resume_alone_take_the_folders_their_pass_holds(
    run_cli: Runner, tmp_path: Path
) -> None:
    # Both runs stopped after epoch 1 of 2 with their last.ckpt: the stacked pass holds their
    # folders' locks and lets each resume alone in the single pipeline, in the same process
    # (imbloss.runs.lock is re-entrant there); no lock is left behind.
    sweep = tmp_path / "sweep"
    args = ["-m", *SYNTHETIC, "model=mlp", "model.hidden=[16]", "trainer.max_epochs=2"]
    args += ["loss=ce,pf", f"hydra.sweep.dir={sweep}"]
    stopped = run_cli([*args, "stop_at_epoch=1"])
    assert stopped.returncode == 0, stopped.stderr
    resumed = run_cli([*args, "hydra/launcher=stacked"])
    assert resumed.returncode == 0, resumed.stderr
    for job in _jobs(sweep):
        metrics = json.loads((job / "metrics.json").read_text())
        assert (metrics["epochs"], metrics["stopped_at_epoch"], metrics["engine"]) == (
            2,
            None,
            "single",
        )
        assert "stopped at epoch 1: continuing to epoch 2" in (job / "train.log").read_text()
        assert not (job / "job.lock").exists()
