"""Progress of a whole multirun: ``[k/N] ...; f failed; about T left`` as each job ends."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from imbloss.multirun.progress import (
    FAILED,
    OK,
    SKIPPED,
    JobEnd,
    duration,
    job_ended,
    job_label,
    progress_of,
    start_sweep,
)

from conftest import FAST_OVERRIDES

Runner = Callable[..., subprocess.CompletedProcess[str]]
LINE = re.compile(r"^imbloss: \[(\d+)/(\d+)\] (.*)$", re.MULTILINE)


def test_durations() -> None:
    assert [duration(s) for s in (42.4, 552, 11_400, 3600)] == [
        "42 s",
        "9 min 12 s",
        "3 h 10 min",
        "1 h 0 min",
    ]


def test_time_left_is_the_wall_time_per_job_run_times_the_jobs_left() -> None:
    ended = [{"status": s} for s in (OK, SKIPPED, FAILED, OK)]
    end = JobEnd("loss=pf seed=2", OK, 0.838, 0.809, 552)
    # 300 s since the start for 3 jobs run (the skipped one costs nothing): 100 s a job, 6 left
    progress = progress_of(ended, jobs=10, started=1000.0, now=1300.0)
    assert progress.figures() == {
        "sweep/ended": 4,
        "sweep/failed": 1,
        "sweep/jobs": 10,
        "sweep/left_s": 600,
    }
    assert progress.line(end) == (
        "[4/10] loss=pf seed=2: G-mean 83.8 (whole split 80.9) in 9 min 12 s; 1 failed; "
        "about 10 min 0 s left"
    )
    assert progress_of(ended, jobs=4, started=0, now=1).line(end) == (
        "[4/4] loss=pf seed=2: G-mean 83.8 (whole split 80.9) in 9 min 12 s; 1 failed"
    )
    skipped = progress_of(ended[1:2], jobs=None, started=0, now=9).line(JobEnd("loss=ce", SKIPPED))
    assert skipped == "[1] loss=ce: finished before, skipped; 0 failed"


def test_jobs_append_to_one_log(tmp_path: Path) -> None:
    assert job_ended(tmp_path, JobEnd("loss=ce", OK)) is None  # no multirun recorded
    start_sweep(tmp_path, 3, ["loss"], now=0.0)
    overrides = "experiment=fmnist_step loss=ce seed=0"
    first = job_ended(tmp_path, JobEnd(overrides, FAILED), now=60.0)
    assert first is not None and first[0] == "[1/3] loss=ce: failed; 1 failed; about 2 min 0 s left"
    second = job_ended(tmp_path, JobEnd(overrides.replace("ce", "pf"), SKIPPED), now=61.0)
    assert second is not None and second[0].startswith("[2/3] loss=pf: finished before")
    start_sweep(tmp_path, 1, [], now=100.0)  # a new multirun in the folder starts a new count
    restarted = job_ended(tmp_path, JobEnd("loss=ce", FAILED), now=101.0)
    assert restarted is not None and restarted[0] == "[1/1] loss=ce: failed; 1 failed"
    assert job_label(["+x=1", "loss=ce", "seed=0"], ["x", "seed"]) == "+x=1 seed=0"


@pytest.mark.parametrize("launcher", [[], ["hydra/launcher=stacked"]])
def test_a_multirun_prints_a_line_per_job_with_what_is_left(
    run_cli: Runner, tmp_path: Path, launcher: list[str]
) -> None:
    sweep = tmp_path / "sweep"
    result = run_cli(
        [
            "-m",
            *FAST_OVERRIDES,
            "model=mlp",
            "model.hidden=[16]",
            "sweep=wce",
            "sweep.limit=2",
            "seed=0,1",
            f"hydra.sweep.dir={sweep}",
            *launcher,
        ]
    )
    assert result.returncode == 0, result.stderr
    lines = LINE.findall(result.stdout)
    assert [(int(k), int(n)) for k, n, _ in lines] == [(k, 4) for k in range(1, 5)]
    labels = sorted(text.split(":")[0] for _, _, text in lines)
    assert labels == sorted(f"loss.scale={v} seed={s}" for s in (0, 1) for v in ("0.1", "0.2"))
    assert all("; 0 failed" in text and "G-mean" in text for _, _, text in lines)
    assert "left" in lines[0][2] and "left" not in lines[-1][2]


def test_a_failed_job_is_counted(run_cli: Runner, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    result = run_cli(  # a job that fails when it runs (the pre-flight check is left out)
        [
            "-m",
            *FAST_OVERRIDES,
            "loss=wce",
            "loss.scale=1.0,-1.0",
            f"hydra.sweep.dir={sweep}",
            "~hydra.callbacks.sweep_preflight",
        ]
    )
    assert result.returncode == 0, result.stderr
    lines = LINE.findall(result.stdout)
    assert lines[-1][:2] == ("2", "2")
    assert lines[-1][2] == "loss.scale=-1.0: failed; 1 failed"
