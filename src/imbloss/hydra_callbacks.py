"""Hydra callbacks (``hydra.callbacks`` in ``conf/hydra/default.yaml``), run by any launcher."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from imbloss.layout import CONFIG_FILE
from imbloss.progress import start_sweep
from imbloss.run_folder import FolderState, folder_state


def job_folders(sweep_dir: Path) -> list[Path]:
    """The job folders below a multirun's folder (those holding Hydra's ``.hydra/config.yaml``)."""
    return sorted(p.parent.parent for p in Path(sweep_dir).glob(f"**/{CONFIG_FILE.as_posix()}"))


def summary_line(before: dict[Path, FolderState], after: dict[Path, FolderState]) -> str:
    """``multirun of N jobs: a finished before (skipped), b resumed, c retried, d new; ...``.

    ``before``: the state of every job folder when the multirun started; ``after``: at its end.
    A folder that was new (or absent) before counts as new.
    """
    was = Counter(before.get(folder, FolderState.NEW) for folder in after)
    now = Counter(after.values())
    return (
        f"multirun of {len(after)} jobs: {was[FolderState.FINISHED]} finished before (skipped), "
        f"{was[FolderState.RESUMABLE]} resumed, {was[FolderState.FAILED]} retried, "
        f"{was[FolderState.NEW]} new; now {now[FolderState.FINISHED]} finished, "
        f"{now[FolderState.FAILED]} failed"
    )


class ResumeSummary(Callback):
    """Prints one line at the end of a multirun: what a re-run skipped, resumed, retried, began."""

    def __init__(self) -> None:
        self._before: dict[Path, FolderState] = {}

    @staticmethod
    def _states(config: DictConfig) -> dict[Path, FolderState]:
        return {folder: folder_state(folder) for folder in job_folders(config.hydra.sweep.dir)}

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._before = self._states(config)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        print(f"imbloss: {summary_line(self._before, self._states(config))}", flush=True)


def basic_sweep_plan(config: DictConfig) -> tuple[int | None, list[str]]:
    """The number of jobs Hydra's basic sweeper makes of this multirun (its ``params`` and the
    command line's overrides) and the keys swept over; (None, []) for another sweeper."""
    sweeper = config.hydra.sweeper
    if sweeper.get("_target_") != f"{BasicSweeper.__module__}.{BasicSweeper.__name__}":
        return None, []
    arguments = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]
    arguments += list(config.hydra.overrides.task)
    overrides = OverridesParser.create().parse_overrides(arguments)
    jobs = sum(len(batch) for batch in BasicSweeper.split_arguments(overrides, None))
    return jobs, [o.get_key_element() for o in overrides if o.is_sweep_override()]


class SweepProgress(Callback):
    """Records the multirun's size and start (:mod:`imbloss.progress`), so that every job that
    ends prints ``[k/N] ...; about T left``."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        start_sweep(config.hydra.sweep.dir, *basic_sweep_plan(config))
