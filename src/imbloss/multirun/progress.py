"""Progress of a whole multirun: one line each time a job ends, with what is left.

``[12/54] loss=pf ir=100 seed=2: G-mean 83.8 (whole split 80.9) in 9 min 12 s; 2 failed; about
3 h 10 min left``

The multirun's size and start time are written once into ``<sweep dir>/.imbloss/progress.json``
(:class:`imbloss.multirun.callbacks.SweepProgress`, in the process that launches the jobs). Every
job that ends, in whatever process runs it (basic, joblib, submitit, or a member of a stack),
appends one line to ``finished.jsonl`` beside it (an appended line of under 4 KB is written whole,
even by processes side by side) and prints the progress read back from both files. The estimate of
the time left is the wall time per job ended so far, jobs skipped as finished before left out,
times the jobs still to end: with jobs side by side it counts them as they run.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from imbloss.runs.outputs import write_json

PROGRESS_DIR = ".imbloss"
PLAN_FILE = "progress.json"
LOG_FILE = "finished.jsonl"
OK, FAILED, SKIPPED = "ok", "failed", "skipped"


def _files(sweep_dir: Path | str) -> tuple[Path, Path]:
    folder = Path(sweep_dir) / PROGRESS_DIR
    return folder / PLAN_FILE, folder / LOG_FILE


def start_sweep(
    sweep_dir: Path | str,
    jobs: int | None,
    varying: Sequence[str] = (),
    now: float | None = None,
) -> None:
    """Record a multirun of ``jobs`` jobs (None: not known) starting now, whose overrides of the
    keys ``varying`` tell its jobs apart (none: every override); forget an earlier multirun."""
    plan, log = _files(sweep_dir)
    plan.parent.mkdir(parents=True, exist_ok=True)
    started = time.time() if now is None else now
    write_json(plan, {"jobs": jobs, "varying": list(varying), "started": started})
    log.unlink(missing_ok=True)


def job_label(overrides: Sequence[str], varying: Sequence[str]) -> str:
    """``loss=pf seed=2``: the job's overrides of the keys that vary in its multirun."""
    kept = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") in varying] if varying else []
    return " ".join(kept or overrides)


@dataclass(frozen=True)
class JobEnd:
    """One job that ended: its label, status, and (finished) its protocol-split and whole-split
    G-mean and its seconds of fit and evaluation."""

    label: str  # its overrides, space-separated
    status: str
    gmean: float = 0.0
    full_gmean: float = 0.0
    seconds: float = 0.0

    def describe(self) -> str:
        if self.status == SKIPPED:
            return f"{self.label}: finished before, skipped"
        if self.status == FAILED:
            return f"{self.label}: failed"
        figures = f"G-mean {100 * self.gmean:.1f} (whole split {100 * self.full_gmean:.1f})"
        return f"{self.label}: {figures} in {duration(self.seconds)}"


def duration(seconds: float) -> str:
    """``9 min 12 s``, ``3 h 10 min``, ``42 s``."""
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


@dataclass(frozen=True)
class Progress:
    """Where the multirun stands once a job ended: jobs ended (skipped ones included), of how
    many (None: not known), failed, and the seconds left by the estimate (None: no estimate)."""

    done: int
    jobs: int | None
    failed: int
    left_s: float | None

    def line(self, end: JobEnd) -> str:
        count = f"[{self.done}/{self.jobs}]" if self.jobs else f"[{self.done}]"
        line = f"{count} {end.describe()}; {self.failed} failed"
        if self.left_s is not None:
            line += f"; about {duration(self.left_s)} left"
        return line

    def figures(self) -> dict[str, float]:
        """The same figures as a summary for the W&B run of the job that ended."""
        figures = {"sweep/ended": self.done, "sweep/failed": self.failed}
        if self.jobs:
            figures["sweep/jobs"] = self.jobs
        if self.left_s is not None:
            figures["sweep/left_s"] = round(self.left_s)
        return figures


def progress_of(
    ended: Sequence[Mapping[str, Any]], jobs: int | None, started: float, now: float
) -> Progress:
    """The progress once ``ended`` (every job ended so far, with its ``status``) have ended."""
    done = len(ended)
    failed = sum(e["status"] == FAILED for e in ended)
    ran = done - sum(e["status"] == SKIPPED for e in ended)
    left = (now - started) / ran * (jobs - done) if jobs and done < jobs and ran > 0 else None
    return Progress(done, jobs, failed, left)


def job_ended(
    sweep_dir: Path | str, end: JobEnd, now: float | None = None
) -> tuple[str, Progress] | None:
    """Append ``end`` to the multirun's log; its progress line and the progress (None when the
    multirun was not recorded by :func:`start_sweep`)."""
    plan_path, log_path = _files(sweep_dir)
    if not plan_path.is_file():
        return None
    record = json.dumps({"label": end.label, "status": end.status}) + "\n"
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, record.encode())
    finally:
        os.close(fd)
    plan = json.loads(plan_path.read_text())
    ended = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    now = time.time() if now is None else now
    labelled = replace(end, label=job_label(end.label.split(" "), plan.get("varying", ())))
    progress = progress_of(ended, plan["jobs"], plan["started"], now)
    return progress.line(labelled), progress
