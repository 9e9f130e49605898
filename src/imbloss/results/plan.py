"""From a campaign file to what runs: the ``train.py -m`` commands of its stages, the earlier
runs it reuses, and what each stage still lacks.

Every grid of a stage is one multirun of ``train.py`` with ``campaign=<job_config>`` into the
campaign folder, one subfolder per job named after the overrides that vary within the campaign
(:func:`imbloss.results.config.job_dirname`; the campaign's fixed overrides and the overrides
given after ``--`` are excluded from the names). The same job of two stages is therefore one
folder: a finished job is never trained twice, and running a stage again continues it.
Replicates run outermost, so replicate 0 of every cell of a grid finishes before replicate 1
starts.
"""

from __future__ import annotations

import shutil
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from imbloss.errors import ConfigError
from imbloss.results.config import (
    CampaignConfig,
    Grid,
    Job,
    Stage,
    job_dirname,
    override_value,
    sweep_values,
)
from imbloss.runs.layout import RunFolder
from imbloss.runs.lock import holder
from imbloss.runs.readers import read_json_file

# what a reused run's copy leaves behind: checkpoints, locks, the stacked and halving state
NOT_REUSED = ("checkpoints", "job.lock", ".imbloss", ".stacked")


def parse_extras(extras: Sequence[str], campaign: CampaignConfig) -> dict[str, str]:
    """The overrides given after ``--`` (``key=value`` each), which go to every job; a
    ConfigError for one that is not ``key=value`` or that sets what names a job (a grid key or
    the replicate key: choose stages and ``--replicates`` instead)."""
    naming = set(campaign.replicate_keys)
    for stage in campaign.stages:
        for grid in stage.grids:
            naming |= set(grid.overrides) | set(grid.fixed)
    parsed: dict[str, str] = {}
    for extra in extras:
        key, sep, value = extra.partition("=")
        if not sep or not key:
            raise ConfigError(
                f"override {extra!r} after -- is not key=value; accepted: e.g. trainer.max_epochs=1"
            )
        if key.lstrip("+~") in naming:
            raise ConfigError(
                f"override {extra!r} after -- sets {key!r}, which names the campaign's jobs; "
                f"accepted: any other key (the jobs' own keys: {', '.join(sorted(naming))})"
            )
        parsed[key] = value
    return parsed


def grid_commands(
    campaign: CampaignConfig,
    grid: Grid,
    folder: Path,
    replicates: int | None = None,
    extras: Mapping[str, str] | None = None,
) -> list[list[str]]:
    """The ``train.py`` arguments of the multiruns of ``grid`` into ``folder``: one per replicate
    (every replicate key set to k), none for the replicates ``replicates`` leaves out."""
    extras = dict(extras or {})
    # the stage's fixed keys replace the campaign's and, like the grid's, name the folders
    fixed = {**campaign.fixed, **extras, **grid.fixed}
    following = campaign.replicate_keys[1:]  # set with the first, not part of the names
    unnamed = {"campaign", *following, *((set(campaign.fixed) | set(extras)) - set(grid.fixed))}
    return [
        [
            "-m",
            f"campaign={campaign.job_config}",
            f"hydra.sweep.dir={folder}",
            f"hydra.job.config.override_dirname.exclude_keys=[{','.join(sorted(unnamed))}]",
            *(f"{key}={value}" for key, value in fixed.items()),
            *(f"{key}={k}" for key in campaign.replicate_keys),
            *(f"{key}={_sweep(value)}" for key, value in grid.overrides.items()),
        ]
        for k in grid.replicates
        if replicates is None or k < replicates
    ]


def _sweep(value: object) -> str:
    """A grid entry in Hydra's sweep syntax (``a,b,c``)."""
    return ",".join(sweep_values(value))


def config_holds(config: Mapping[str, object], key: str, value: str) -> bool:
    """Whether a run's resolved ``config`` (``.hydra/config.yaml``) has the override
    ``key=value``: the dotted key's value, or a config group's ``name`` (``loss=pf``)."""
    node: object = config
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    if isinstance(node, Mapping):
        node = node.get("name")
    return override_value(node) == value or (
        isinstance(node, int | float) and not isinstance(node, bool) and _same_number(node, value)
    )


def _same_number(number: float, text: str) -> bool:
    try:
        return float(text) == float(number)
    except ValueError:
        return False


def reuse_finished(
    campaign: CampaignConfig, jobs: Sequence[Job], folder: Path, repo: Path
) -> list[str]:
    """Copy into ``folder`` every job of ``jobs`` that has not started there but has finished in
    a folder of ``campaign.reuse`` with every override of the job (its configuration is checked:
    replicate 1's ``dataset.seed=1`` is not an earlier run's 0); checkpoints and locks are left
    behind. The names copied."""
    copied = []
    for job in jobs:
        target = folder / job_dirname(job)
        if target.exists():
            continue
        for reuse in campaign.reuse:
            source = RunFolder(repo / reuse.dir / job_dirname({**job, **reuse.add}))
            if not (source.metrics.is_file() and source.config.is_file()):
                continue
            config = yaml.safe_load(source.config.read_text()) or {}
            wanted = campaign.full_overrides(job)
            if all(config_holds(config, key, value) for key, value in wanted.items()):
                shutil.copytree(source.path, target, ignore=shutil.ignore_patterns(*NOT_REUSED))
                copied.append(f"{job_dirname(job)} (from {reuse.dir})")
                break
    return copied


@dataclass(frozen=True)
class StageStatus:
    """How far a stage is: jobs finished, failed, and still to run; of the last, the folders a
    process trains now (its ``job.lock`` held), each with its epochs done and planned."""

    stage: str
    finished: int
    failed: int
    to_run: int
    running: tuple[tuple[str, int, int | None], ...] = ()  # (folder, epochs done, planned)

    @property
    def total(self) -> int:
        return self.finished + self.failed + self.to_run


def stage_status(
    campaign: CampaignConfig, stage: Stage, folder: Path, replicates: int | None = None
) -> StageStatus:
    """Count the jobs of ``stage`` in ``folder`` by what their folders hold."""
    folders = [RunFolder(folder / job_dirname(j)) for j in campaign.stage_jobs(stage, replicates)]
    finished = sum(f.metrics.is_file() for f in folders)
    failed = sum(f.error.is_file() and not f.metrics.is_file() for f in folders)
    running = tuple(
        (f.path.name, epochs_logged(f), epochs_planned(f))
        for f in folders
        if not f.metrics.is_file() and holder(f.lock) is not None
    )
    return StageStatus(stage.name, finished, failed, len(folders) - finished - failed, running)


def epochs_logged(run: RunFolder) -> int:
    """The epochs a run has finished so far: one past the last epoch of its CSV log (0 without)."""
    try:
        last = run.curves.read_text().rstrip("\n").rsplit("\n", 1)[-1]
    except OSError:
        return 0
    epoch = last.split(",", 1)[0]
    return int(epoch) + 1 if epoch.isdigit() else 0


def epochs_planned(run: RunFolder) -> int | None:
    """``trainer.max_epochs`` of a begun run's ``.hydra/config.yaml`` (None before it exists)."""
    try:
        config = yaml.safe_load(run.config.read_text()) or {}
    except OSError:
        return None
    epochs = (config.get("trainer") or {}).get("max_epochs")
    return int(epochs) if epochs is not None else None


def jobs_side_by_side(campaign: CampaignConfig, repo: Path) -> int:
    """How many jobs the campaign trains at once: ``hydra.launcher.n_jobs`` of its
    ``conf/campaign/<job_config>.yaml`` (1 when it sets none: Hydra's basic launcher)."""
    path = repo / "conf" / "campaign" / f"{campaign.job_config}.yaml"
    config = yaml.safe_load(path.read_text()) if path.is_file() else None
    launcher = ((config or {}).get("hydra") or {}).get("launcher") or {}
    return int(launcher.get("n_jobs", 1))


@dataclass(frozen=True)
class TimeLeft:
    """What a campaign's jobs left would take: each stage's jobs at the median time (fit and
    evaluation) of its finished runs, or of all finished runs where it has none, divided by the
    jobs trained side by side."""

    jobs: int
    seconds: float
    median_s: float  # of all finished runs
    side_by_side: int

    @property
    def hours(self) -> float:
        return self.seconds / 3600 / self.side_by_side

    def sentence(self) -> str:
        together = (
            f"with {self.side_by_side} jobs side by side"
            if self.side_by_side > 1
            else "one job at a time"
        )
        return (
            f"About {self.hours:.1f} h of this machine remain for the {self.jobs} jobs left, "
            f"{together}, at the median time of each stage's finished runs (of all finished "
            f"runs, {self.median_s / 60:.1f} min, for a stage with none)."
        )


def run_seconds(run: RunFolder) -> float:
    """A finished run's time: ``fit_time_s`` + ``evaluation_time_s`` of its ``metrics.json``."""
    metrics = read_json_file(run.metrics)
    return float(metrics.get("fit_time_s", 0.0)) + float(metrics.get("evaluation_time_s", 0.0))


def time_left(campaign: CampaignConfig, folder: Path, side_by_side: int) -> TimeLeft | None:
    """The estimate for the jobs of ``campaign`` not finished in ``folder``; None when none is
    left or none has finished (nothing to measure by). A job of two stages counts once."""
    seen: set[str] = set()
    stages: list[tuple[list[float], int]] = []  # (finished runs' times, jobs left) per stage
    for stage in campaign.stages:
        times, left = [], 0
        for job in campaign.stage_jobs(stage):
            name = job_dirname(job)
            if name in seen:
                continue
            seen.add(name)
            run = RunFolder(folder / name)
            if run.metrics.is_file():
                times.append(run_seconds(run))
            else:
                left += 1
        stages.append((times, left))
    every = [t for times, _ in stages for t in times]
    jobs = sum(left for _, left in stages)
    if not every or not jobs:
        return None
    overall = statistics.median(every)
    seconds = sum(left * (statistics.median(times) if times else overall) for times, left in stages)
    return TimeLeft(jobs, seconds, overall, side_by_side)


def precisions(campaign: CampaignConfig, stages: Sequence[Stage]) -> set[str]:
    """The ``trainer.precision`` values the jobs of ``stages`` train in."""
    found = set()
    for stage in stages:
        for grid in stage.grids:
            for job in campaign.grid_jobs(grid):
                found.add(campaign.full_overrides(job).get("trainer.precision", "32-true"))
    return found


def chosen_stages(campaign: CampaignConfig, names: Sequence[str]) -> list[Stage]:
    """The named stages (all checked before any runs), or every stage in order of priority."""
    if not names:
        return list(campaign.stages)
    unknown = [name for name in names if name not in {s.name for s in campaign.stages}]
    if unknown:
        campaign.stage(unknown[0])  # raises the ConfigError naming the accepted stages
    return [campaign.stage(name) for name in names]


def check_replicates(value: int | None) -> int | None:
    """``--replicates`` as None or a count >= 1."""
    if value is not None and value < 1:
        raise ConfigError(f"--replicates={value} is out of range; accepted: an integer >= 1")
    return value
