"""One process at a time in a run folder (imbloss.runs.lock), and a campaign that stops whole
(imbloss.results.processes): the refusals, the release on death, the stop of a worker process."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from imbloss.results.processes import RUNNER_LOCK, held_run_folders, stop_campaign
from imbloss.runs.lock import FolderBusyError, hold_run_folder, holder

from conftest import FAST_OVERRIDES, REPO_ROOT

Runner = Callable[..., subprocess.CompletedProcess[str]]
HOLD_FOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from imbloss.runs.lock import hold_run_folder
    with hold_run_folder(Path(sys.argv[1])):
        print("held", flush=True)
        time.sleep(600)
    """
)


def _wait_until(condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.fixture
def other_process() -> Iterator[Callable[[Path], subprocess.Popen[str]]]:
    """Start a process that holds a run folder's lock until it is killed."""
    started: list[subprocess.Popen[str]] = []

    def _start(folder: Path) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-c", HOLD_FOLDER, str(folder)], stdout=subprocess.PIPE, text=True
        )
        started.append(process)
        assert process.stdout is not None and process.stdout.readline() == "held\n"
        return process

    yield _start
    for process in started:
        process.kill()
        process.wait()


def test_a_held_folder_is_refused_naming_its_holder_until_the_holder_dies(
    tmp_path: Path, other_process: Callable[[Path], subprocess.Popen[str]]
) -> None:
    folder = tmp_path / "run"
    process = other_process(folder)
    assert holder(folder / "job.lock").startswith(f"process {process.pid} on ")
    with (
        pytest.raises(
            FolderBusyError, match=rf"job folder {folder} is in use by process {process.pid} "
        ),
        hold_run_folder(folder),
    ):
        pass
    process.send_signal(signal.SIGKILL)  # no clean-up: the kernel lets go of the lock
    process.wait()
    assert holder(folder / "job.lock") is None
    with hold_run_folder(folder):
        assert (folder / "job.lock").read_text().startswith(f"process {os.getpid()} on ")
    assert not (folder / "job.lock").exists()


def test_a_process_may_hold_its_own_folder_again(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    with hold_run_folder(folder):
        with hold_run_folder(folder):  # a stacked member that resumes alone
            assert holder(folder / "job.lock") is None  # this process's own lock
        assert (folder / "job.lock").is_file()  # the outer hold still holds it
        probe = subprocess.run(
            [sys.executable, "-c", HOLD_FOLDER, str(folder)], capture_output=True, text=True
        )
        assert probe.returncode == 1 and "FolderBusyError" in probe.stderr
    assert not (folder / "job.lock").exists()


def test_a_run_into_a_folder_another_process_trains_changes_nothing(
    run_cli: Runner, tmp_path: Path, other_process: Callable[[Path], subprocess.Popen[str]]
) -> None:
    folder = tmp_path / "run"
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "checkpoints" / "last.ckpt").write_bytes(b"the other process's state")
    process = other_process(folder)
    result = run_cli([*FAST_OVERRIDES, f"hydra.run.dir={folder}"])
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"imbloss: error: job folder {folder} is in use by "
        f"{(folder / 'job.lock').read_text()}; a run folder is trained by one process at a time: "
        "wait for that process to finish, or stop it (docs/resuming-and-clusters.md, 'Stopping "
        "a sweep'), then run the job again"
    ]
    assert process.poll() is None
    assert (folder / "checkpoints" / "last.ckpt").read_bytes() == b"the other process's state"
    written = {p.name for p in folder.iterdir()}
    assert not written & {"metrics.json", "error.json", "predictions.npz", "csv"}, written
    assert [p.name for p in (folder / "checkpoints").iterdir()] == ["last.ckpt"]


def test_a_multirun_over_a_folder_another_process_trains_is_refused_before_training(
    run_cli: Runner, tmp_path: Path, other_process: Callable[[Path], subprocess.Popen[str]]
) -> None:
    sweep = tmp_path / "sweep"
    process = other_process(sweep / "1")
    result = run_cli(["-m", *FAST_OVERRIDES, "loss=ce,pf", f"hydra.sweep.dir={sweep}"])
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("  job ")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"  job 1 (loss=pf): job folder {sweep / '1'} is in use by process ")
    assert str(process.pid) in lines[0]
    assert sorted(p.name for p in sweep.iterdir()) == ["1"]  # nothing trained
    assert sorted(p.name for p in (sweep / "1").iterdir()) == ["job.lock"]


# A stand-in for `train.py -m` under joblib: it starts a worker that trains (holds) a run folder
# of the campaign, then waits; the worker outlives it unless its process group is stopped.
STUB_TRAIN = textwrap.dedent(
    """
    import subprocess, sys, time
    worker = subprocess.Popen([sys.executable, "-c", {hold!r}, "results/fmnist_step/job"])
    open("worker.pid", "w").write(str(worker.pid))
    time.sleep(600)
    """
)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def test_stop_ends_the_runner_and_the_workers_of_its_multirun(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(STUB_TRAIN.format(hold=HOLD_FOLDER))
    shutil.copytree(REPO_ROOT / "campaigns", tmp_path / "campaigns")
    campaign = tmp_path / "results" / "fmnist_step"
    command = [sys.executable, "-m", "imbloss.results", "run", "--campaign"]
    command += ["fmnist_one_subsample", "ir10"]
    runner = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    try:
        _wait_until(lambda: holder(campaign / "job" / "job.lock") is not None)
        worker = int((tmp_path / "worker.pid").read_text())
        assert holder(campaign / RUNNER_LOCK).startswith(f"process {runner.pid} on ")
        second = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
        assert second.returncode == 2
        assert f"the campaign in {campaign} is in use by process {runner.pid}" in second.stderr

        stop = subprocess.run(
            [sys.executable, "-m", "imbloss.results", "stop", "--campaign", "fmnist_one_subsample"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert f"campaign: stopped the runner (process {runner.pid} on " in stop.stdout
        assert "campaign: no process trains a run folder of the campaign" in stop.stdout
        assert runner.wait(timeout=10) == 128 + signal.SIGTERM
        assert not _alive(worker)
        assert held_run_folders(campaign) == []
    finally:
        runner.kill()
        runner.wait()


def test_stop_names_a_process_that_still_trains_a_run_folder(
    tmp_path: Path, other_process: Callable[[Path], subprocess.Popen[str]]
) -> None:
    campaign = tmp_path / "results" / "fmnist_step"
    orphan = other_process(campaign / "job")  # a worker of a campaign stopped some other way
    code, lines = stop_campaign(campaign)
    assert code == 1
    assert lines[0] == f"campaign: no runner holds {campaign / RUNNER_LOCK}"
    assert lines[1].startswith(
        f"campaign: {campaign / 'job'} is still trained by process {orphan.pid} on "
    )
    assert lines[1].endswith(": stop that process")
