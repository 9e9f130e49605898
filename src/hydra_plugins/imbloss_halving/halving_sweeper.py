"""``hydra/sweeper=halving``: successive halving over the points of a tuning grid.

The grid is made as Hydra's basic sweeper makes it (``hydra.sweeper.params``, e.g. from
``sweep=wce``, and the command line's ``-m`` axes). Each rung is one batch of jobs through the
configured launcher (basic, joblib, submitit, stacked): every job is the point's own run,
configured for the whole schedule, with ``stop_at_epoch`` set to the rung's epoch and its folder
fixed to the one the point got in rung 0, so a continued point resumes from its own
``checkpoints/last.ckpt``. The rungs and the choice of points are :mod:`imbloss.multirun.halving`'s;
``<sweep dir>/halving.json`` records them, and a re-run of the same command keeps the rungs
that finished and the points that finished in the rung it continues.

Settings (``hydra.sweeper.<key>``): ``eta`` (3), ``min_epochs`` (1), ``max_epochs`` (null: the
configuration's ``trainer.max_epochs``; otherwise every point is configured for it), ``metric``
(``val_gmean`` or ``val_auc``), ``params`` (the grid, as the basic sweeper's).
"""

import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

from imbloss.errors import ConfigError
from imbloss.multirun.halving import (
    RECORD_FILE,
    HalvingRecord,
    Point,
    RungRecord,
    best_per_setting,
    check_halving,
    hyperparameter_keys,
    keep_best,
    make_points,
    rung_epochs,
)
from imbloss.multirun.preflight import job_folder_name
from imbloss.multirun.progress import duration
from imbloss.runs.layout import RunFolder
from imbloss.runs.readers import read_json_file

log = logging.getLogger(__name__)


@dataclass
class HalvingSweeperConf:
    """Structured config of ``hydra/sweeper=halving`` (typing.Optional: OmegaConf reads it)."""

    _target_: str = "hydra_plugins.imbloss_halving.halving_sweeper.HalvingSweeper"
    eta: int = 3
    min_epochs: int = 1
    max_epochs: Optional[int] = None  # noqa: UP045
    metric: str = "val_gmean"
    params: Optional[dict[str, str]] = None  # noqa: UP045


ConfigStore.instance().store(
    group="hydra/sweeper", name="halving", node=HalvingSweeperConf, provider="imbloss"
)


def quoted(value: str) -> str:
    """``value`` as a quoted Hydra override value (``=`` and ``,`` stay literal)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class HalvingSweeper(Sweeper):
    """Runs the grid's rungs through the launcher; returns each rung's job returns."""

    def __init__(
        self,
        eta: int = 3,
        min_epochs: int = 1,
        max_epochs: int | None = None,
        metric: str = "val_gmean",
        params: dict[str, str] | None = None,
    ) -> None:
        self.eta = eta
        self.min_epochs = min_epochs
        self.max_epochs = max_epochs
        self.metric = metric
        self.params = dict(params or {})
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.launcher: Any = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> list[Sequence[JobReturn]]:
        try:
            record = self._plan(arguments)
        except ConfigError as error:
            print(f"imbloss: error: {error}; nothing was trained", file=sys.stderr, flush=True)
            sys.exit(2)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        record = self._resume(record, sweep_dir)
        epochs = rung_epochs(record.min_epochs, record.max_epochs, record.eta)
        points = list(record.points)
        for done in record.rungs:
            points = [p for p in points if p.folder in done.kept]
        returns: list[Sequence[JobReturn]] = []
        for rung in range(len(record.rungs), len(epochs)):
            started = time.perf_counter()
            rung_returns, scores, trained = self._run_rung(points, epochs[rung], sweep_dir)
            returns.append(rung_returns)
            last = rung == len(epochs) - 1
            kept = points if last else keep_best(points, scores, record.eta, record.metric)
            wall_s = time.perf_counter() - started
            record.rungs.append(
                RungRecord(rung, epochs[rung], scores, [p.folder for p in kept], trained, wall_s)
            )
            record.write(sweep_dir)
            trained_to = _count(epochs[rung], "epoch")
            print(
                f"imbloss: halving rung {rung + 1} of {len(epochs)} ({trained_to}): "
                f"{_count(len(points), 'point')} in ({trained} trained, {len(points) - trained} "
                f"done before), {len(kept)} kept, {duration(wall_s)}",
                flush=True,
            )
            points = kept
        self._print_choice(record)
        return returns

    def _plan(self, arguments: list[str]) -> HalvingRecord:
        """The sweep's points and settings (ConfigError for a bad value)."""
        config = self.config
        max_epochs = self.max_epochs
        if max_epochs is None:
            max_epochs = config.trainer.get("max_epochs")
        check_halving(self.eta, self.min_epochs, max_epochs, self.metric)
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        params = [f"{key}={value}" for key, value in self.params.items()]
        if self.max_epochs is not None:
            params.append(f"trainer.max_epochs={self.max_epochs}")
        overrides = parser.parse_overrides([*params, *arguments])
        swept = [o.get_key_element() for o in overrides if o.is_sweep_override()]
        hparam_keys = hyperparameter_keys(swept)
        (jobs,) = BasicSweeper.split_arguments(overrides, None)
        folders = self._folder_names(jobs)
        points = make_points(jobs, folders, hparam_keys)
        return HalvingRecord(self.eta, self.min_epochs, max_epochs, self.metric, points)

    def _folder_names(self, jobs: Sequence[Sequence[str]]) -> list[str]:
        """Each point's folder, named as the sweep's ``hydra.sweep.subdir`` names rung 0's job."""
        names = [job_folder_name(self.config, o, number) for number, o in enumerate(jobs)]
        if all(name is not None for name in names):
            return names  # type: ignore[return-value]
        names = []
        for number, overrides in enumerate(jobs):
            job = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
            with open_dict(job):
                job.hydra.job.num = number
                job.hydra.job.id = number
            saved = HydraConfig.instance().cfg
            HydraConfig.instance().set_config(job)
            try:
                names.append(str(OmegaConf.select(job, "hydra.sweep.subdir")))
            finally:
                HydraConfig.instance().cfg = saved
        return names

    @staticmethod
    def _resume(record: HalvingRecord, sweep_dir: Path) -> HalvingRecord:
        """The record of an earlier run of this sweep in ``sweep_dir`` (its finished rungs kept),
        or ``record``; a ConfigError (exit 2) if the folder holds another halving sweep."""
        path = sweep_dir / RECORD_FILE
        if not path.is_file():
            return record
        earlier = HalvingRecord.read(path)
        differences = earlier.same_sweep(record)
        if differences:
            print(
                f"imbloss: error: {sweep_dir} holds another halving sweep (differs in: "
                f"{', '.join(differences)}); choose another hydra.sweep.dir or remove it; "
                "nothing was trained",
                file=sys.stderr,
                flush=True,
            )
            sys.exit(2)
        log.info("%s: %d rung(s) finished before, kept", path, len(earlier.rungs))
        return earlier

    def _run_rung(
        self, points: list[Point], epochs: int, sweep_dir: Path
    ) -> tuple[Sequence[JobReturn], dict[str, dict[str, float | None] | None], int]:
        """Train the rung's points not yet at ``epochs``; their returns, every point's scores,
        and how many were trained."""
        todo = [p for p in points if _score(sweep_dir / p.folder, epochs) is None]
        batch = [
            [*p.overrides, f"stop_at_epoch={epochs}", f"hydra.sweep.subdir={quoted(p.folder)}"]
            for p in todo
        ]
        returns = self.launcher.launch(batch, initial_job_idx=0) if batch else []
        scores = {p.folder: _score(sweep_dir / p.folder, epochs) for p in points}
        return returns, scores, len(todo)

    @staticmethod
    def _print_choice(record: HalvingRecord) -> None:
        """One line per setting: the point the last rung ranks first."""
        final = record.rungs[-1]
        finalists = [p for p in record.points if p.folder in final.kept]
        chosen = best_per_setting(finalists, final.scores, record.metric)
        common = set.intersection(*(set(p.setting) for p in record.points))
        for point in chosen:
            hparams = [o for o in point.overrides if o not in point.setting]
            setting = [o for o in point.setting if o not in common]
            where = f" for {' '.join(setting)}" if setting else ""
            value = (final.scores[point.folder] or {}).get(record.metric)
            print(
                f"imbloss: halving chose {' '.join(hparams)}{where} (folder {point.folder}, "
                f"{record.metric} {value:.4f})",
                flush=True,
            )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _score(folder: Path, epochs: int) -> dict[str, float | None] | None:
    """The validation figures of the run in ``folder`` if it has finished ``epochs`` epochs (its
    ``metrics.json``: whole, or stopped at ``epochs`` or later); else None."""
    files = RunFolder(folder)
    if not files.metrics.is_file():
        return None
    metrics = read_json_file(files.metrics)
    stopped = metrics.get("stopped_at_epoch")
    if metrics.get("status", "ok") != "ok" or (stopped is not None and stopped < epochs):
        return None
    return {"val_gmean": metrics.get("val_gmean"), "val_auc": metrics.get("val_auc")}
