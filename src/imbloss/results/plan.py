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
    """How far a stage is: jobs finished, failed, and still to run."""

    stage: str
    finished: int
    failed: int
    to_run: int

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
    return StageStatus(stage.name, finished, failed, len(folders) - finished - failed)


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
