"""The campaign's processes: one runner at a time, each multirun in a process group of its own,
and a stop that leaves no training process behind.

``python -m imbloss.results run`` holds the campaign's lock (:data:`RUNNER_LOCK`, through
:mod:`imbloss.runs.lock`) while it runs, so a second runner over the same folder is refused. It
starts each stage's ``train.py -m`` in a new session: the joblib worker processes that multirun
starts inherit its process group. On SIGTERM or SIGINT the runner stops that whole group
(:func:`stop_group`: SIGTERM, then SIGKILL after a grace period), so a worker cannot outlive the
campaign and go on training a job it had taken, while a restarted campaign trains the same
folder.

``python -m imbloss.results stop`` (:func:`stop_campaign`) signals the runner, waits for it to
end, and then lists every run folder some process still holds (an orphan of a campaign stopped
some other way), with the process that holds it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from types import FrameType

from imbloss.runs.layout import LOCK_FILE
from imbloss.runs.lock import hold_lock, holder

RUNNER_LOCK = Path(".imbloss") / "campaign.lock"  # under the campaign folder
GRACE_S = 30.0  # how long a stopped group may take to end before SIGKILL
STOP_WAIT_S = 120.0  # how long `stop` waits for the runner to end
_POLL_S = 0.2


def _alive_in_group(group: int) -> list[int]:
    """The processes of process group ``group`` that have not ended (zombies excluded)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses
        state, _ppid, pgrp = text[text.rindex(")") + 2 :].split()[:3]
        if int(pgrp) == group and state not in ("Z", "X"):
            alive.append(int(stat.parent.name))
    return alive


def _wait_for(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_S)
    return True


def stop_group(group: int, grace_s: float = GRACE_S) -> None:
    """End every process of process group ``group``: SIGTERM, then SIGKILL after ``grace_s``."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(group, signum)
        except ProcessLookupError:
            return
        if _wait_for(lambda: not _alive_in_group(group), grace_s):
            return


def run_in_own_group(command: Sequence[str], cwd: Path) -> int:
    """Run ``command`` in a new session and return its exit status; on SIGTERM or SIGINT, stop
    its whole process group (:func:`stop_group`) and exit with 128 + the signal's number."""
    child = subprocess.Popen(list(command), cwd=cwd, start_new_session=True)
    received: list[int] = []

    def stop(signum: int, _frame: FrameType | None) -> None:
        # The wait below holds the child's wait lock: the handler only ends the group, and the
        # wait, resumed, returns once the child has ended.
        print(f"campaign: signal {signum}: stopping the multirun's processes", flush=True)
        received.append(signum)
        stop_group(child.pid)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        code = child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if received:
        raise SystemExit(128 + received[0])
    return code


def hold_runner(campaign: Path) -> AbstractContextManager[None]:
    """Hold the campaign's runner lock for the block (FolderBusyError if a runner holds it)."""
    return hold_lock(
        campaign / RUNNER_LOCK,
        f"the campaign in {campaign}",
        "one runner at a time: stop it first with `python -m imbloss.results stop` "
        "(make campaign-stop), or wait for it to finish",
    )


def held_run_folders(campaign: Path) -> list[tuple[Path, str]]:
    """Every run folder under ``campaign`` whose lock a process holds, with that process."""
    held = []
    for lock in sorted(campaign.glob(f"*/{LOCK_FILE}")):
        line = holder(lock)
        if line is not None:
            held.append((lock.parent, line))
    return held


def _runner_pid(line: str) -> int | None:
    """The process id in a lock's holder line, if it runs on this host."""
    match = re.match(r"process (\d+) on (\S+) ", line)
    if match is None or match.group(2) != os.uname().nodename:
        return None
    return int(match.group(1))


def stop_campaign(campaign: Path, wait_s: float = STOP_WAIT_S) -> tuple[int, list[str]]:
    """Stop the runner of the campaign in ``campaign`` and check that nothing trains there.

    Returns (exit status, lines to print): 0 when no process holds the runner's lock or a run
    folder's lock afterwards; 1 with each holder named otherwise.
    """
    lines = []
    runner = holder(campaign / RUNNER_LOCK)
    if runner is None:
        lines.append(f"campaign: no runner holds {campaign / RUNNER_LOCK}")
    else:
        pid = _runner_pid(runner)
        if pid is None:
            return 1, [f"campaign: the runner is {runner}, not on this host: stop it there"]
        os.kill(pid, signal.SIGTERM)
        if not _wait_for(lambda: holder(campaign / RUNNER_LOCK) is None, wait_s):
            return 1, [f"campaign: the runner ({runner}) still runs after {wait_s:.0f} s"]
        lines.append(f"campaign: stopped the runner ({runner})")
    held = held_run_folders(campaign)
    for folder, line in held:
        lines.append(f"campaign: {folder} is still trained by {line}: stop that process")
    if not held:
        lines.append("campaign: no process trains a run folder of the campaign")
    return (1 if held else 0), lines
