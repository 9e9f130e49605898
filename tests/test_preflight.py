"""Every job of a multirun checked before the first one trains (imbloss.multirun.preflight)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from imbloss.multirun.preflight import _Composer

from conftest import CONF_DIR, FAST_OVERRIDES

Runner = Callable[..., subprocess.CompletedProcess[str]]
MLP = ("model=mlp", "model.hidden=[16]")


@pytest.mark.parametrize(
    "overrides",
    [
        ["loss=wce", "loss.scale=0.5", "ir=20", "seed=3"],
        ["experiment=fmnist_step", "loss=ldam", "loss.max_m=0.3", "trainer.max_epochs=7"],
        ["sampler=class_balanced", "sampler.q=0.5", "+tags=[a]", "model=mlp", "model.hidden=[8,4]"],
        ["campaign=fmnist", "loss=pf", "dataset.label_noise=0.2"],
    ],
)
def test_cheap_composition_equals_hydras(overrides: list[str]) -> None:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        composer = _Composer("train")
        first = composer.compose(overrides)
        second = composer.compose([*overrides[:1], *overrides[1:]])  # from the cache
        expected = compose("train", overrides=overrides)
    for cfg in (first, second):
        assert OmegaConf.to_container(cfg) == OmegaConf.to_container(expected)


def test_one_bad_value_among_200_jobs_stops_the_sweep(run_cli: Runner, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    scales = [f"{0.1 + i / 100:.2f}" for i in range(199)] + ["-1.0"]
    result = run_cli(
        [
            "-m",
            *FAST_OVERRIDES,
            *MLP,
            "loss=wce",
            f"loss.scale={','.join(scales)}",
            f"hydra.sweep.dir={sweep}",
        ]
    )
    assert result.returncode == 2, result.stderr
    assert "imbloss: error: 1 of 200 jobs would fail; nothing was trained:" in result.stderr
    assert (
        "  job 199 (loss.scale=-1.0): loss hyperparameter scale=-1.0 is invalid; accepted: a "
        "number > 0"
    ) in result.stderr
    assert not sweep.exists()  # no folder touched


@pytest.mark.parametrize("launcher", [["hydra/launcher=stacked"], ["hydra/launcher=joblib"]])
def test_every_launcher_is_checked_first(
    run_cli: Runner, tmp_path: Path, launcher: list[str]
) -> None:
    sweep = tmp_path / "sweep"
    result = run_cli(
        [
            "-m",
            *FAST_OVERRIDES,
            *MLP,
            "loss=ce,pf",
            "trainer.precision=7",
            *launcher,
            f"hydra.sweep.dir={sweep}",
        ]
    )
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("  job ")]
    assert len(lines) == 2
    assert lines[0].startswith(
        "  job 0 (loss=ce): trainer.precision=7 is refused by lightning.Trainer: Precision 7 is "
        "invalid. Allowed precision values: ("
    )
    assert not sweep.exists()


def test_a_folder_claimed_by_another_configuration_is_refused_before_training(
    run_cli: Runner, tmp_path: Path
) -> None:
    sweep = tmp_path / "sweep"
    first = run_cli(["-m", *FAST_OVERRIDES, *MLP, "loss=ce,pf", f"hydra.sweep.dir={sweep}"])
    assert first.returncode == 0, first.stderr
    before = {p: p.stat().st_mtime_ns for p in sweep.rglob("*") if p.is_file()}
    # job 1 is now wce, not pf; job 0 (ce) is the same and finished
    again = run_cli(["-m", *FAST_OVERRIDES, *MLP, "loss=ce,wce", f"hydra.sweep.dir={sweep}"])
    assert again.returncode == 2, again.stderr
    lines = [line for line in again.stderr.splitlines() if line.startswith("  job ")]
    assert len(lines) == 1 and lines[0].startswith("  job 1 (loss=wce): job folder ")
    assert "differs in: loss" in lines[0]
    assert {p: p.stat().st_mtime_ns for p in sweep.rglob("*") if p.is_file()} == before
