"""Every bad value stops a run, or a multirun, with one line and exit 2 before anything is
written (imbloss.jobcheck): the checks of each object Hydra builds, and their translation."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf

from imbloss.errors import ConfigError
from imbloss.jobcheck import JobCheck, refusals

from conftest import FAST_OVERRIDES

Runner = Callable[..., subprocess.CompletedProcess[str]]
SEEDS = "accepted: an integer from 0 to 4294967295"


def _error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert "Traceback" not in result.stderr, result.stderr
    return [line for line in result.stderr.splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("override", "line"),
    [
        ("seed=-1", f"seed=-1 is not a seed; {SEEDS}"),
        ("seed=abc", f"seed='abc' is not a seed; {SEEDS}"),
        (
            "optimizer.lr=-1",
            "optimizer.lr=-1 is refused by torch.optim.Adam: Invalid learning rate: -1; "
            "accepted: a number >= 0",
        ),
        (
            "optimizer.weight_decay=-1",
            "optimizer.weight_decay=-1 is refused by torch.optim.Adam: Invalid weight_decay "
            "value: -1; accepted: a number >= 0",
        ),
        (
            "trainer.precision=7",
            "trainer.precision=7 is refused by lightning.Trainer: Precision 7 is invalid. "
            "Allowed precision values: (",
        ),
        (
            "dataset.batch_size=abc",
            "dataset.batch_size='abc' is not an integer; accepted: an integer >= 1",
        ),
        # an argument the configs do not set, refused by torch with no check of imbloss's own
        ("+optimizer.eps=-1", "optimizer.eps=-1 is refused by torch.optim.Adam: Invalid epsilon"),
    ],
)
def test_a_bad_value_stops_a_run_with_one_line_before_its_folder_exists(
    run_cli: Runner, tmp_path: Path, override: str, line: str
) -> None:
    run_dir = tmp_path / "run"
    result = run_cli([*FAST_OVERRIDES, override, f"hydra.run.dir={run_dir}"])
    assert result.returncode == 2, result.stderr
    (error,) = _error_lines(result)
    assert error.startswith(f"imbloss: error: {line}"), error
    assert not run_dir.exists()
    assert not (tmp_path / "logs").exists()


def test_a_bad_value_leaves_an_existing_run_folder_as_it_was(
    run_cli: Runner, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text("seed: 0\n")
    (run_dir / "notes.txt").write_text("an earlier run's\n")

    def files() -> dict[Path, tuple[bytes, int] | None]:
        return {
            p: (p.read_bytes(), p.stat().st_mtime_ns) if p.is_file() else None
            for p in run_dir.rglob("*")
        }

    before = files()
    result = run_cli([*FAST_OVERRIDES, "optimizer.lr=-1", f"hydra.run.dir={run_dir}"])
    assert result.returncode == 2, result.stderr
    (error,) = _error_lines(result)
    assert error.startswith("imbloss: error: optimizer.lr=-1 ")
    assert files() == before


def test_a_bad_seed_stops_a_multirun_before_its_first_job(run_cli: Runner, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    result = run_cli(["-m", *FAST_OVERRIDES, "seed=0,-1", f"hydra.sweep.dir={sweep}"])
    assert result.returncode == 2, result.stderr
    assert "imbloss: error: 1 of 2 jobs would fail; nothing was trained:" in result.stderr
    assert f"  job 1 (seed=-1): seed=-1 is not a seed; {SEEDS}" in result.stderr
    assert not sweep.exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["dataset.seed=-1"], f"dataset.seed=-1 is not a seed; {SEEDS}"),
        (["dataset.seed=4294967296"], "dataset.seed=4294967296 is not a seed"),
        (["sampler=drs", "sampler.q=-1"], r"sampler.q=-1 is invalid; accepted: a number >= 0"),
        (
            ["model.dropout=2"],
            r"model.dropout=2 is refused by imbloss.models.FashionMNISTCNN: dropout probability "
            r"has to be between 0 and 1, but got 2$",
        ),
        (["model.hidden=-5"], r"model.hidden=-5 is refused by .*negative dimension -5"),
        # the network is built for the source's image shape: a 5x5 kernel does not fit 2x2
        (
            ["dataset.image_size=2", "model.kernel_size=5"],
            r"model.kernel_size=5 is refused by imbloss.models.FashionMNISTCNN: .*Kernel size",
        ),
        (["dataset.image_size=0"], r"dataset.image_size=0 is out of range; accepted: an integer"),
        (
            ["+optimizer.betas=[0.9,2]"],
            r"optimizer.betas=\[0.9, 2\] is refused by torch.optim.Adam: Invalid beta parameter "
            r"at index 1: 2$",
        ),
        (
            ["optimizer=sgd", "optimizer.momentum=-0.5"],
            r"optimizer.momentum=-0.5 is refused by torch.optim.SGD: Invalid momentum value: "
            r"-0.5; accepted: a number >= 0$",
        ),
        (["+trainer.colour=1"], r"trainer.colour=1 is refused by lightning.Trainer: .*'colour'"),
    ],
)
def test_each_object_hydra_builds_is_checked(
    compose_train_cfg: Callable[..., DictConfig], overrides: list[str], message: str
) -> None:
    cfg = compose_train_cfg(*FAST_OVERRIDES, *overrides)
    with pytest.raises(ConfigError, match=message):
        JobCheck()(cfg, None)


def test_a_good_job_passes(compose_train_cfg: Callable[..., DictConfig], tmp_path: Path) -> None:
    cfg = compose_train_cfg(*FAST_OVERRIDES, "model=mlp", "sampler=oversample")
    JobCheck()(cfg, tmp_path / "new")


NODE = OmegaConf.create({"_target_": "torch.optim.Adam", "lr": -1, "weight_decay": -1})


def _raise_in_node(error: BaseException) -> None:
    with refusals(OmegaConf.create({"optimizer": NODE}), "optimizer"):
        raise error


def test_a_refusal_wrapped_by_hydra_names_every_value_it_may_mean() -> None:
    wrapped = InstantiationException("Error in call to target 'torch.optim.Adam'")
    wrapped.__cause__ = ValueError("Invalid value: -1")
    with pytest.raises(ConfigError) as caught:
        _raise_in_node(wrapped)
    assert str(caught.value) == (
        "optimizer.lr=-1, optimizer.weight_decay=-1 is refused by torch.optim.Adam: "
        "Invalid value: -1; accepted: a number >= 0"
    )


def test_a_refusal_naming_no_value_names_the_node() -> None:
    with pytest.raises(ConfigError, match=r"^optimizer is refused by torch.optim.Adam: bad\.$"):
        _raise_in_node(TypeError("bad."))


def test_a_user_error_and_a_bug_come_out_as_they_are() -> None:
    own = ConfigError("loss hyperparameter scale=-1 is invalid")
    with pytest.raises(ConfigError) as caught:
        _raise_in_node(own)
    assert caught.value is own
    for bug in (ZeroDivisionError("division by zero"), RuntimeError("CUDA error: out of memory")):
        with pytest.raises(type(bug)) as raised:
            _raise_in_node(bug)
        assert raised.value is bug
