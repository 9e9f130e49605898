"""An interrupted stacked pass resumes from its saved state to the uninterrupted files."""

import csv
import functools
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from hydra_plugins.imbloss_stacked.stacked_launcher import StackedLauncher
from imbloss.data import ImbalancedDataModule
from imbloss.errors import ConfigError
from imbloss.module import ImbalancedClassifier
from imbloss.stacked.engine import MemberOutcome, fit_stack
from imbloss.stacked.state import (
    StackState,
    join_states,
    member_state,
    read_member_state,
    read_stack_state,
    write_member_state,
    write_stack_state,
)

from conftest import FAST_OVERRIDES, REPO_ROOT
from helpers.losses import NaNFromCall

Runner = Callable[..., subprocess.CompletedProcess[str]]
# What may differ between a resumed run and an uninterrupted one (as in tests/test_resume.py)
NOT_COMPARED = {"fit_time_s", "stack_fit_time_s", "evaluation_time_s", "checkpoint"}
KILL_AFTER_STATE_OF_2_EPOCHS = {
    "IMBLOSS_TEST_KILL_AFTER_STACK_EPOCHS": "2",
    "PYTHONPATH": os.pathsep.join(
        p
        for p in (str(REPO_ROOT / "tests" / "helpers" / "stack_kill"), os.environ.get("PYTHONPATH"))
        if p
    ),
}


def _synthetic(tmp_path: Path) -> ImbalancedDataModule:
    """The synthetic data set up for fitting (IR=10, batches of 100)."""
    datamodule = ImbalancedDataModule("synthetic", str(tmp_path), ir=10, batch_size=100)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def _members(datamodule: ImbalancedDataModule, seeds: list[int]) -> list[ImbalancedClassifier]:
    """Members with dropout (the random generators matter); the second one's loss turns NaN."""
    modules = []
    for seed in seeds:
        torch.manual_seed(seed)
        net = nn.Sequential(
            nn.Flatten(), nn.Linear(64, 16), nn.Dropout(0.5), nn.Linear(16, datamodule.num_classes)
        )
        loss_fn = NaNFromCall(3) if seed == seeds[1] else nn.CrossEntropyLoss()
        optimizer = lambda p: torch.optim.Adam(p, lr=0.01)  # noqa: E731
        modules.append(ImbalancedClassifier(net, loss_fn, optimizer, datamodule.minority_classes))
    return modules


def _assert_same_outcome(outcome: MemberOutcome, expected: MemberOutcome) -> None:
    for key, value in vars(expected).items():
        if key.endswith("_state"):
            assert value.keys() == getattr(outcome, key).keys()
            assert all(torch.equal(getattr(outcome, key)[n], v) for n, v in value.items()), key
        elif key == "failure":  # its loss is NaN, equal to nothing
            assert repr(getattr(outcome, key)) == repr(value)
        else:
            assert getattr(outcome, key) == value, key


@pytest.mark.parametrize("vectorize", [True, False], ids=["vmap", "loop"])
def test_a_fit_resumed_from_its_state_is_the_uninterrupted_fit(tmp_path, vectorize) -> None:
    datamodule = _synthetic(tmp_path)
    seeds, device = [0, 1, 2], torch.device("cpu")
    states: list[StackState] = []
    failures: list[int] = []
    fit = functools.partial(fit_stack, seeds=seeds, datamodule=datamodule, max_epochs=3,
                            device=device, vectorize=vectorize)  # fmt: skip
    whole, steps = fit(_members(datamodule, seeds), on_state=states.append)
    assert [state.epochs_done for state in states] == [1, 2]  # none after the last epoch
    path = tmp_path / ".stacked" / "pass.pt"
    write_stack_state(path, states[0], [4, 5, 6])
    members, state = read_stack_state(path)
    assert members == [4, 5, 6] and state.step == states[0].step == 10
    epochs: list[int] = []
    resumed, resumed_steps = fit(
        _members(datamodule, seeds),
        on_epoch_end=lambda epoch, step, figures: epochs.append(epoch),
        on_failure=lambda k, record: failures.append(k),
        resume_from=state,
    )
    assert (epochs, failures, resumed_steps) == ([1, 2], [1], steps)  # failure reported again
    assert whole[1].failure is not None
    for outcome, expected in zip(resumed, whole, strict=True):
        _assert_same_outcome(outcome, expected)


def _metrics(job: Path) -> dict:
    metrics = json.loads((job / "metrics.json").read_text())
    return {k: v for k, v in metrics.items() if k not in NOT_COMPARED}


def test_killed_stacked_pass_resumes_to_the_uninterrupted_files(
    run_cli: Runner, tmp_path: Path
) -> None:
    args = [
        "-m",
        *FAST_OVERRIDES,
        "model=mlp",
        "model.hidden=[16]",
        "trainer.max_epochs=3",
        "loss=ce,pf",
        "seed=0,1",
        "hydra/launcher=stacked",
        "hydra.launcher.save_every_s=0",
    ]
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    command = [*args, f"hydra.sweep.dir={killed}"]
    first = run_cli(command, **KILL_AFTER_STATE_OF_2_EPOCHS)
    assert first.returncode == -9, first.stderr  # SIGKILL once the state after epoch 1 was saved
    (state,) = (killed / ".stacked").glob("*.pt")
    assert not any((job / "metrics.json").exists() for job in killed.glob("[0-9]"))
    resumed = run_cli(command)
    assert resumed.returncode == 0, resumed.stderr
    assert (
        f"resuming stacked pass of 4 members at epoch 3 (2 epochs done) from {state}"
        in resumed.stdout + resumed.stderr
    )
    assert not state.parent.exists()  # the pass's state, and the folder it was alone in
    assert "epoch 3/3" in resumed.stdout + resumed.stderr
    assert "epoch 2/3" not in resumed.stdout + resumed.stderr  # only the last epoch trained
    assert run_cli([*args, f"hydra.sweep.dir={whole}"]).returncode == 0

    jobs = sorted(p.name for p in whole.glob("[0-9]"))
    assert jobs == ["0", "1", "2", "3"]
    for name in jobs:
        done, expected = killed / name, whole / name
        metrics = _metrics(done)
        assert (metrics["engine"], metrics["stack_size"], metrics["epochs"]) == ("stacked", 4, 3)
        assert metrics == _metrics(expected), name
        arrays, expected_arrays = (np.load(j / "predictions.npz") for j in (done, expected))
        assert set(arrays.files) == set(expected_arrays.files)
        for key in arrays.files:
            np.testing.assert_allclose(arrays[key], expected_arrays[key], rtol=0, atol=1e-6)
        curves = (done / "csv" / "metrics.csv").read_text()
        assert curves == (expected / "csv" / "metrics.csv").read_text(), name
        rows = csv.DictReader(curves.splitlines())
        assert [row["epoch"] for row in rows if row["epoch"]] == ["0", "0", "1", "1", "2", "2"]


@pytest.mark.parametrize("value", [-1.0, float("nan")])
def test_save_every_s_below_0_is_refused(value: float) -> None:
    with pytest.raises(ConfigError, match=rf"save_every_s={value} is out of range; accepted"):
        StackedLauncher(save_every_s=value)


def _plain_members(
    datamodule: ImbalancedDataModule, seeds: list[int]
) -> list[ImbalancedClassifier]:
    """Members without dropout: a pass of fewer members then draws no other random numbers."""
    modules = []
    for seed in seeds:
        torch.manual_seed(seed)
        net = nn.Sequential(
            nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, datamodule.num_classes)
        )
        optimizer = lambda p: torch.optim.Adam(p, lr=0.01)  # noqa: E731
        modules.append(
            ImbalancedClassifier(net, nn.CrossEntropyLoss(), optimizer, datamodule.minority_classes)
        )
    return modules


@pytest.mark.parametrize("vectorize", [False, True], ids=["loop", "vmap"])
def test_members_stopped_early_continue_as_a_pass_of_their_own(tmp_path, vectorize) -> None:
    datamodule = _synthetic(tmp_path)
    fit = functools.partial(fit_stack, datamodule=datamodule, device=torch.device("cpu"),
                            vectorize=vectorize)  # fmt: skip
    states: list[StackState] = []
    fit(_plain_members(datamodule, [0, 1, 2]), seeds=[0, 1, 2], max_epochs=1,
        on_state=states.append, final_state=True)  # fmt: skip
    assert [state.epochs_done for state in states] == [1]  # the state after the last epoch
    for k in range(3):
        write_member_state(tmp_path / f"{k}.pt", member_state(states[0], k))
    kept = [read_member_state(tmp_path / f"{k}.pt") for k in (0, 2)]
    assert kept[0].params["1.weight"].shape == (1, 16, 64)
    assert kept[1].fit_time_s == pytest.approx(states[0].fit_time_s / 3)
    joined = join_states(kept)
    assert joined.params["1.weight"].shape == (2, 16, 64)
    assert torch.equal(joined.params["1.weight"][1], states[0].params["1.weight"][2])
    continued, steps = fit(_plain_members(datamodule, [0, 2]), seeds=[0, 2], max_epochs=3,
                           resume_from=joined)  # fmt: skip
    whole, whole_steps = fit(_plain_members(datamodule, [0, 2]), seeds=[0, 2], max_epochs=3)
    assert steps == whole_steps
    for outcome, expected in zip(continued, whole, strict=True):
        if not vectorize:  # each member's own kernels: bit for bit the pass of two
            _assert_same_outcome(outcome, expected)
        for name, value in expected.last_state.items():  # vmap: grouped kernels of 3, then 2
            assert torch.allclose(outcome.last_state[name], value, atol=1e-5), name


def test_member_states_after_different_epochs_do_not_join(tmp_path) -> None:
    datamodule = _synthetic(tmp_path)
    states: list[StackState] = []
    fit_stack(_plain_members(datamodule, [0, 1]), [0, 1], datamodule, max_epochs=2,
              device=torch.device("cpu"), on_state=states.append, save_every_s=0,
              final_state=True)  # fmt: skip
    with pytest.raises(ValueError, match=r"different epochs and steps \[\(1, 10\), \(2, 20\)\]"):
        join_states([member_state(states[0], 0), member_state(states[1], 1)])
