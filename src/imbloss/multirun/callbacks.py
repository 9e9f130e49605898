"""Hydra callbacks (``hydra.callbacks`` in ``conf/hydra/default.yaml``), run by any launcher."""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

from imbloss.errors import UserError
from imbloss.jobcheck import check_run
from imbloss.multirun.preflight import check_sweep, job_folder_name
from imbloss.multirun.progress import job_label, start_sweep
from imbloss.runs.folder import FolderState, folder_state
from imbloss.runs.layout import CONFIG_FILE

log = logging.getLogger(__name__)


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
    """Prints one line at the end of a multirun: what a re-run skipped, resumed, retried, began.

    It counts the folders of this multirun's jobs where their names are known before they run
    (:func:`imbloss.multirun.preflight.job_folder_name`): a sweep folder shared by several
    multiruns (the results campaign's) holds others too. Otherwise every job folder below the sweep
    folder."""

    def __init__(self) -> None:
        self._before: dict[Path, FolderState] = {}

    @staticmethod
    def _folders(config: DictConfig) -> list[Path]:
        sweep_dir = Path(config.hydra.sweep.dir)
        plan = basic_sweep_jobs(config)
        if plan is not None:
            names = [job_folder_name(config, o, n) for n, o in enumerate(plan[0])]
            if all(name is not None for name in names):
                return [sweep_dir / name for name in names]  # type: ignore[operator]
        return job_folders(sweep_dir)

    @classmethod
    def _states(cls, config: DictConfig) -> dict[Path, FolderState]:
        return {folder: folder_state(folder) for folder in cls._folders(config)}

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._before = self._states(config)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        print(f"imbloss: {summary_line(self._before, self._states(config))}", flush=True)


HALVING_SWEEPER = "hydra_plugins.imbloss_halving.halving_sweeper.HalvingSweeper"
BASIC_SWEEPER = f"{BasicSweeper.__module__}.{BasicSweeper.__name__}"


def basic_sweep_jobs(config: DictConfig) -> tuple[list[list[str]], list[str]] | None:
    """The jobs (each its overrides) Hydra's basic sweeper makes of this multirun, from its
    ``params`` and the command line's overrides, and the keys swept over; under
    ``hydra/sweeper=halving`` the points of its first rung (every point); None for another
    sweeper."""
    sweeper = config.hydra.sweeper
    if sweeper.get("_target_") not in (BASIC_SWEEPER, HALVING_SWEEPER):
        return None
    arguments = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]
    if sweeper.get("max_epochs") is not None:  # the halving sweeper's whole schedule
        arguments.append(f"trainer.max_epochs={sweeper.max_epochs}")
    arguments += list(config.hydra.overrides.task)
    overrides = OverridesParser.create().parse_overrides(arguments)
    (jobs,) = BasicSweeper.split_arguments(overrides, None)
    return jobs, [o.get_key_element() for o in overrides if o.is_sweep_override()]


class SweepProgress(Callback):
    """Records the multirun's size and start (:mod:`imbloss.multirun.progress`), so that every job
    that ends prints ``[k/N] ...; about T left``."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        plan = basic_sweep_jobs(config)
        jobs, varying = (None, []) if plan is None else (len(plan[0]), plan[1])
        if config.hydra.sweeper.get("_target_") == HALVING_SWEEPER:
            jobs = None  # the rungs launch fewer jobs each; the sweeper prints one line per rung
        start_sweep(config.hydra.sweep.dir, jobs, varying)


class SweepPreflight(Callback):
    """Checks every job of the multirun before any is launched (:mod:`imbloss.multirun.preflight`);
    exit status 2 and one line per bad job if any would fail, before any folder is touched."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        plan = basic_sweep_jobs(config)
        if plan is None:
            return
        started = time.perf_counter()
        bad = check_sweep(config, plan[0])
        log.info(
            "checked %d jobs before the first one trains in %.1f s",
            len(plan[0]),
            time.perf_counter() - started,
        )
        if bad:
            lines = "\n".join(
                f"  job {job.number} ({job_label(job.overrides, plan[1])}): {job.message}"
                for job in bad
            )
            print(
                f"imbloss: error: {len(bad)} of {len(plan[0])} jobs would fail; nothing was "
                f"trained:\n{lines}",
                file=sys.stderr,
                flush=True,
            )
            sys.exit(2)


class RunPreflight(Callback):
    """Checks a single run before Hydra creates or touches its folder, as each job of a multirun
    is checked (:func:`imbloss.jobcheck.check_run`): exit status 2 and one line if it would
    fail on bad input. Under data-parallel training the processes after the first (which
    checked the run) are not checked again."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if rank_zero_only.rank != 0:
            return
        try:
            check_run(config)
        except UserError as error:
            print(f"imbloss: error: {error}", file=sys.stderr, flush=True)
            sys.exit(2)
