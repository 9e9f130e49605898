"""Resumable runs and multiruns: job-folder states, claims, kills and re-runs, bad files."""

from __future__ import annotations

import json
import logging
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.errors import InstantiationException
from omegaconf import OmegaConf

from imbloss.errors import ConfigError, RunFileError, find_user_error
from imbloss.multirun.callbacks import job_folders, summary_line
from imbloss.pipeline import train
from imbloss.runs.folder import (
    CLAIMED_CONFIG,
    FolderConflictError,
    FolderState,
    claim_folder,
    folder_state,
)
from imbloss.runs.layout import LAST_CHECKPOINT_FILE
from imbloss.runs.outputs import write_json, write_predictions
from imbloss.runs.readers import read_checkpoint, read_json_file, read_predictions
from imbloss.runs.resume import AtomicCheckpointIO, trim_csv_log

from conftest import FAST_OVERRIDES, REPO_ROOT
from helpers.wandb_records import history_values

Runner = Callable[..., subprocess.CompletedProcess[str]]
KILL_AFTER_EPOCH_1 = (
    "+callbacks.kill._target_=helpers.interrupt.KillAfterEpoch",
    "+callbacks.kill.epoch=1",
)
TESTS_ON_PATH = {
    "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO_ROOT / "tests"), os.environ.get("PYTHONPATH")) if p
    )
}
# What may differ between a resumed run and an uninterrupted one: time and the folder's name.
NOT_COMPARED = {"fit_time_s", "stack_fit_time_s", "evaluation_time_s", "checkpoint"}

CONFIG = {"loss": {"name": "pf"}, "seed": 0, "paths": {"log_dir": "/a"}, "trainer": {"x": 1}}


def _hydra_folder(folder: Path, config: dict) -> Path:
    """A job folder as Hydra leaves it before the job runs: ``.hydra/*.yaml`` only."""
    (folder / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(config), folder / ".hydra" / "config.yaml")
    (folder / ".hydra" / "overrides.yaml").write_text("- seed=0\n")
    return folder


# ------------------------------------------------------------------ folder states and claims


def test_folder_state_is_read_from_the_files(tmp_path: Path) -> None:
    assert folder_state(tmp_path) is FolderState.NEW
    (tmp_path / LAST_CHECKPOINT_FILE).parent.mkdir()
    (tmp_path / LAST_CHECKPOINT_FILE).write_bytes(b"x")
    assert folder_state(tmp_path) is FolderState.RESUMABLE
    write_json(tmp_path / "error.json", {"status": "failed"})
    assert folder_state(tmp_path) is FolderState.FAILED
    write_json(tmp_path / "metrics.json", {"status": "ok"})
    assert folder_state(tmp_path) is FolderState.FINISHED


def test_claim_records_the_config_and_accepts_it_again(tmp_path: Path) -> None:
    folder = _hydra_folder(tmp_path / "0", CONFIG)
    assert claim_folder(folder, CONFIG) is FolderState.NEW
    assert OmegaConf.to_container(OmegaConf.load(folder / CLAIMED_CONFIG)) == CONFIG
    write_json(folder / "metrics.json", {"status": "ok"})
    moved = {**CONFIG, "paths": {"log_dir": "/elsewhere"}}  # where files go is no result
    assert claim_folder(folder, moved) is FolderState.FINISHED


def test_a_different_config_is_refused_naming_folder_and_keys(tmp_path: Path) -> None:
    folder = _hydra_folder(tmp_path / "3", CONFIG)
    claim_folder(folder, CONFIG)
    write_json(folder / "metrics.json", {"status": "ok"})
    # Hydra rewrites .hydra/ for the new job before any of our code runs
    (folder / ".hydra" / "overrides.yaml").write_text("- seed=1\n")
    with pytest.raises(FolderConflictError, match=r"job folder .*3 .*differs in: loss.name, seed"):
        claim_folder(folder, {**CONFIG, "seed": 1, "loss": {"name": "ce"}})
    assert (folder / ".hydra" / "overrides.yaml").read_text() == "- seed=0\n"


def test_results_without_a_claim_are_not_reused(tmp_path: Path) -> None:
    folder = _hydra_folder(tmp_path / "0", CONFIG)
    write_json(folder / "metrics.json", {"status": "ok"})
    with pytest.raises(FolderConflictError, match="no record of the configuration"):
        claim_folder(folder, CONFIG)


def test_summary_line_counts_the_states_before_and_after(tmp_path: Path) -> None:
    folders = [_hydra_folder(tmp_path / str(n), CONFIG) for n in range(5)]
    assert job_folders(tmp_path) == folders
    before = {
        folders[0]: FolderState.FINISHED,
        folders[1]: FolderState.RESUMABLE,
        folders[2]: FolderState.FAILED,
        folders[3]: FolderState.NEW,
    }
    after = dict.fromkeys(folders, FolderState.FINISHED) | {folders[2]: FolderState.FAILED}
    assert summary_line(before, after) == (
        "multirun of 5 jobs: 1 finished before (skipped), 1 resumed, 1 retried, 2 new; "
        "now 4 finished, 1 failed"
    )


def test_trim_csv_log_drops_the_epochs_after_the_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,step,val/gmean\n0,9,0.5\n1,19,0.6\n2,29,0.7\n")
    trim_csv_log(path, epochs_done=2)
    assert path.read_text() == "epoch,step,val/gmean\n0,9,0.5\n1,19,0.6\n"


# ------------------------------------------------------------------ errors and bad files


def test_config_error_is_found_inside_hydra_wrapping() -> None:
    cause = ConfigError("ir=-5 is out of range")
    try:
        try:
            raise cause
        except ConfigError as error:
            raise InstantiationException("Error in call to target 'X'") from error
    except InstantiationException as wrapped:
        assert find_user_error(wrapped) is cause
    assert find_user_error(ValueError("other")) is None


def test_checkpoints_are_written_atomically(tmp_path: Path) -> None:
    path = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"epoch": 1, "w": torch.ones(3)}, path)

    class Unpicklable:
        def __reduce__(self) -> tuple:
            raise RuntimeError("killed while writing")

    with pytest.raises(RuntimeError, match="killed while writing"):
        AtomicCheckpointIO().save_checkpoint({"epoch": 2, "bad": Unpicklable()}, path)
    assert read_checkpoint(path)["epoch"] == 1  # the previous checkpoint is whole
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


@pytest.mark.parametrize("name", ["last.ckpt", "metrics.json", "predictions.npz"])
def test_truncated_files_are_errors_naming_the_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name == "last.ckpt":
        torch.save({"epoch": 0, "w": torch.ones(100)}, path)
    elif name == "metrics.json":
        write_json(path, {"gmean": 0.5})
    else:
        write_predictions(path, {"target": np.zeros(4), "probs": np.full((4, 2), 0.5)})
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    reader = {"last.ckpt": read_checkpoint, "metrics.json": read_json_file}.get(
        name, read_predictions
    )
    with pytest.raises(RunFileError, match=str(path)):
        reader(path)


# ------------------------------------------------------------------ in-process runs


@pytest.mark.parametrize("epochs", [0, -1])
def test_max_epochs_below_1_stops_before_any_work(
    compose_train_cfg, tmp_path: Path, epochs: int
) -> None:
    cfg = compose_train_cfg(*FAST_OVERRIDES, f"trainer.max_epochs={epochs}")
    with pytest.raises(ConfigError, match=rf"trainer.max_epochs={epochs} is out of range"):
        train(cfg)
    assert not (tmp_path / "run").exists()


def test_a_finished_run_is_not_retrained(compose_train_cfg, tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="imbloss.runs.resume")
    cfg = compose_train_cfg(*FAST_OVERRIDES, "loss=ce")
    first = train(cfg)
    stamp = (tmp_path / "run" / "metrics.json").stat().st_mtime_ns
    assert train(cfg) == first
    assert "holds a finished run (metrics.json): not retrained" in caplog.text
    assert (tmp_path / "run" / "metrics.json").stat().st_mtime_ns == stamp


def test_a_failed_job_is_retried_from_the_start(compose_train_cfg, tmp_path: Path) -> None:
    cfg = compose_train_cfg(*FAST_OVERRIDES, "loss=ce")
    run = tmp_path / "run"
    first = train(cfg)
    (run / "metrics.json").unlink()
    write_json(run / "error.json", {"status": "failed", "error": "RuntimeError: out of memory"})
    (run / "checkpoints" / "stale.ckpt").write_bytes(b"")
    second = train(cfg)
    assert not (run / "error.json").exists()
    # the stale file went with the failed attempt; the finished run keeps its selected weights
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.ckpt"]
    assert {k: v for k, v in second.items() if k not in NOT_COMPARED} == {
        k: v for k, v in first.items() if k not in NOT_COMPARED
    }


# ------------------------------------------------------------------ the command line


def test_a_bad_value_raised_inside_instantiate_exits_2_with_one_line(
    run_cli: Runner, tmp_path: Path
) -> None:
    result = run_cli([*FAST_OVERRIDES, "ir=-5"])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "imbloss: error: ir=-5 is out of range; accepted: a finite number >= 1 (or null)"
    ]
    assert not list((tmp_path / "logs").rglob("*.ckpt"))


def test_killed_run_resumes_to_the_uninterrupted_figures(run_cli: Runner, tmp_path: Path) -> None:
    args = [
        *FAST_OVERRIDES,
        "trainer.max_epochs=4",
        "trainer.deterministic=true",
        "loss=wldam",
        "loss.drw_epoch=1",  # re-weighting switched on before the kill: the epoch state survives
    ]
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    command = [*args, *KILL_AFTER_EPOCH_1, f"hydra.run.dir={killed}"]
    first = run_cli(command, **TESTS_ON_PATH)
    assert first.returncode == -9, first.stderr  # SIGKILL after epoch 1 (the second) was saved
    assert not (killed / "metrics.json").exists()
    assert read_checkpoint(killed / LAST_CHECKPOINT_FILE)["epoch"] == 1
    resumed = run_cli(command, **TESTS_ON_PATH)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from {killed / LAST_CHECKPOINT_FILE} (2 epochs done)" in resumed.stdout
    assert run_cli([*args, f"hydra.run.dir={whole}"]).returncode == 0

    metrics = json.loads((killed / "metrics.json").read_text())
    expected = json.loads((whole / "metrics.json").read_text())
    assert metrics["epochs"] == 4
    assert {k: v for k, v in metrics.items() if k not in NOT_COMPARED} == {
        k: v for k, v in expected.items() if k not in NOT_COMPARED
    }
    # finished: last.ckpt, resumed from, is removed (checkpoints=best)
    assert sorted(p.name for p in (killed / "checkpoints").iterdir()) == ["best.ckpt"]
    curves = (killed / "csv" / "metrics.csv").read_text()
    assert curves == (whole / "csv" / "metrics.csv").read_text()


def test_killed_multirun_resumes_and_keeps_finished_jobs(run_cli: Runner, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    command = [
        "-m",
        *FAST_OVERRIDES,
        "trainer.max_epochs=3",
        "loss=ce,wce,pf",
        *KILL_AFTER_EPOCH_1,
        "+callbacks.kill.job=1",
        f"hydra.sweep.dir={sweep}",
    ]
    first = run_cli(command, **TESTS_ON_PATH)
    assert first.returncode == -9, first.stderr
    assert folder_state(sweep / "0") is FolderState.FINISHED
    assert folder_state(sweep / "1") is FolderState.RESUMABLE
    assert not (sweep / "2").exists()
    finished = (sweep / "0" / "metrics.json").read_bytes()
    stamp = (sweep / "0" / "metrics.json").stat().st_mtime_ns

    second = run_cli(command, **TESTS_ON_PATH)
    assert second.returncode == 0, second.stderr
    assert (
        "imbloss: multirun of 3 jobs: 1 finished before (skipped), 1 resumed, 0 retried, 1 new; "
        "now 3 finished, 0 failed"
    ) in second.stdout
    assert (sweep / "0" / "metrics.json").read_bytes() == finished
    assert (sweep / "0" / "metrics.json").stat().st_mtime_ns == stamp
    losses = [json.loads((sweep / str(n) / "metrics.json").read_text())["loss"] for n in range(3)]
    assert losses == ["ce", "wce", "pf"]


def test_report_counts_a_run_with_a_corrupt_metrics_file_as_failed(tmp_path: Path) -> None:
    from imbloss.report import load_runs
    from test_report import write_run

    write_run(tmp_path, "good", loss="pf")
    bad = write_run(tmp_path, "bad", loss="ce")
    (bad / "metrics.json").write_text('{"gmean": 0.5, "au')
    cut = write_run(tmp_path, "cut", loss="wce")
    predictions = cut / "predictions.npz"
    predictions.write_bytes(predictions.read_bytes()[:100])
    runs = load_runs(tmp_path).set_index("run_dir")
    assert runs.loc["good", "status"] == "ok"
    assert list(runs.loc[["bad", "cut"], "status"]) == ["failed", "failed"]
    assert str(bad / "metrics.json") in runs.loc["bad", "error"]
    assert str(predictions) in runs.loc["cut", "error"]
    assert runs.loc["bad", "loss"] == "ce"  # from the config: the cell it was meant for


def test_a_resumed_run_continues_its_wandb_run(run_cli: Runner, tmp_path: Path) -> None:
    """Offline, the interrupted and the resumed part carry one run id, and no epoch is logged
    twice across them: `wandb sync` of both uploads one run. (What the killed part logged is in
    its file only if W&B's writer flushed it before the SIGKILL: here it had not, the file holds
    its header alone.) A run retried from the start is a new W&B run."""
    killed = tmp_path / "killed"
    command = [
        *FAST_OVERRIDES,
        "trainer.max_epochs=3",
        "logger=wandb",
        *KILL_AFTER_EPOCH_1,
        f"hydra.run.dir={killed}",
    ]
    no_key = {"NETRC": str(tmp_path / "no-netrc"), **TESTS_ON_PATH}
    assert run_cli(command, **no_key).returncode == -9
    run_id = (killed / "wandb" / "run_id").read_text().strip()
    resumed = run_cli(command, **no_key)
    assert resumed.returncode == 0, resumed.stderr
    parts = sorted((killed / "wandb").glob("offline-run-*"))
    assert len(parts) == 2
    assert [p.name.rsplit("-", 1)[-1] for p in parts] == [run_id, run_id]
    files = [p / f"run-{run_id}.wandb" for p in parts]
    epochs = [[int(v) for v in history_values(f, "epoch") if "." not in v] for f in files]
    assert set(epochs[0]) <= {0, 1} and sorted(set(epochs[1])) == [2]  # resumed at epoch 2
    write_json(killed / "error.json", {"status": "failed", "error": "RuntimeError: boom"})
    (killed / "metrics.json").unlink()
    assert run_cli(command, **no_key).returncode == -9  # retried from the start, killed again
    assert (killed / "wandb" / "run_id").read_text().strip() != run_id


def test_a_skipped_finished_job_keeps_the_hydra_files_that_made_it(
    run_cli: Runner, tmp_path: Path
) -> None:
    sweep = tmp_path / "sweep"
    command = ["-m", *FAST_OVERRIDES, "loss=ce,pf", f"hydra.sweep.dir={sweep}"]
    assert run_cli(command).returncode == 0
    files = [sweep / str(n) / ".hydra" / name for n in (0, 1) for name in ("config.yaml",
             "overrides.yaml", "hydra.yaml")]  # fmt: skip
    before = {path: path.read_bytes() for path in files}
    # a re-run that differs in how progress is shown only: the jobs are skipped
    again = run_cli([*command, "trainer.enable_progress_bar=true"])
    assert again.returncode == 0, again.stderr
    assert "2 finished before (skipped)" in again.stdout
    assert {path: path.read_bytes() for path in files} == before


def test_the_summary_counts_only_this_multiruns_jobs_in_a_shared_folder(
    run_cli: Runner, tmp_path: Path
) -> None:
    shared = ["-m", *FAST_OVERRIDES, f"hydra.sweep.dir={tmp_path / 'shared'}",
              "hydra.sweep.subdir=${hydra.job.override_dirname}"]  # fmt: skip
    assert run_cli([*shared, "loss=ce,pf"]).returncode == 0
    second = run_cli([*shared, "loss=wce,pf"])
    assert second.returncode == 0, second.stderr
    assert (
        "imbloss: multirun of 2 jobs: 1 finished before (skipped), 0 resumed, 0 retried, 1 new; "
        "now 2 finished, 0 failed"
    ) in second.stdout
