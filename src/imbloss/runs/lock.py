"""One process at a time in a run folder (or a campaign): an exclusive lock on a file in it.

A job trains in its folder only while it holds the folder's ``job.lock`` (:func:`hold_lock`, by
:func:`hold_run_folder`): an advisory ``flock`` that the kernel releases when the holding process
ends, however it ends, so a killed job never leaves its folder locked. Any other process that
reaches a held folder (a worker a stopped sweep left behind, the same sweep started twice, two
SLURM arrays over one sweep folder) is refused with :class:`FolderBusyError`, naming the holder's
process, host and start, before it changes a file. Without the lock two processes could train
one folder at once, each resuming from the other's ``last.ckpt`` and appending to one CSV log.

The lock file holds one line about its holder and is removed when the holder lets go. A process
may take a lock it already holds again (a stacked pass that lets one member resume alone in the
single pipeline): only the outermost hold takes and releases it. ``flock`` works on local file
systems and, on Linux, over NFS.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from imbloss.errors import ConfigError
from imbloss.runs.layout import RunFolder

BUSY_ADVICE = (
    "a run folder is trained by one process at a time: wait for that process to finish, or stop "
    "it (docs/resuming-and-clusters.md, 'Stopping a sweep'), then run the job again"
)
# The locks this process holds: path -> how many holds are open on it.
_held: dict[Path, int] = {}


class FolderBusyError(ConfigError):
    """Another process holds the lock of a run folder (or a campaign)."""


def _holder_line() -> str:
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
    return f"process {os.getpid()} on {socket.gethostname()} since {started}"


def _read_holder(path: Path) -> str:
    try:
        return path.read_text().strip() or "another process"
    except OSError:
        return "another process"


def holder(path: Path) -> str | None:
    """Who holds the lock at ``path`` (the line its holder wrote), or None if no process does.

    Tries the lock without waiting, and lets it go at once; a lock this process holds is None.
    """
    path = Path(path)
    if path.resolve() in _held:
        return None
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_holder(path)
    finally:
        os.close(descriptor)  # closing the descriptor also lets go of a lock it took
    return None


def _busy(what: str, holder_line: str, advice: str) -> str:
    """The one message of a refused lock: ``what`` is in use by its holder; ``advice``."""
    return f"{what} is in use by {holder_line}; {advice}"


def run_folder_busy(folder: Path) -> str | None:
    """Why a job may not train in ``folder`` now (another process holds it), or None."""
    line = holder(RunFolder(folder).lock)
    return None if line is None else _busy(f"job folder {folder}", line, BUSY_ADVICE)


def _take(path: Path, what: str, advice: str) -> int:
    """The descriptor of ``path`` locked by this process, or FolderBusyError."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            raise FolderBusyError(_busy(what, _read_holder(path), advice)) from None
        try:
            if os.stat(path).st_ino == os.fstat(descriptor).st_ino:
                return descriptor
        except FileNotFoundError:
            pass
        os.close(descriptor)  # its holder removed the file between our open and lock: again


@contextmanager
def hold_lock(path: Path, what: str, advice: str) -> Iterator[None]:
    """Hold the exclusive lock at ``path`` for the block; FolderBusyError (``what`` is in use by
    its holder; ``advice``) if another process holds it. Re-entrant within a process."""
    key = Path(path).resolve()
    if key in _held:
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    descriptor = _take(key, what, advice)
    _held[key] = 1
    try:
        os.ftruncate(descriptor, 0)
        os.write(descriptor, _holder_line().encode())
        yield
    finally:
        del _held[key]
        key.unlink(missing_ok=True)
        os.close(descriptor)


def hold_run_folder(folder: Path) -> AbstractContextManager[None]:
    """Hold the lock of the run folder ``folder`` (its ``job.lock``) for the block."""
    return hold_lock(RunFolder(folder).lock, f"job folder {folder}", BUSY_ADVICE)
