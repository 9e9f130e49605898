"""Every job of a multirun checked before the first one trains.

:class:`imbloss.multirun.callbacks.SweepPreflight` calls :func:`check_sweep` in the process that
launches the jobs, before any launcher (basic, joblib, submitit, stacked) starts one: a bad value
at job 1,000 stops the sweep at once, with every bad job listed, instead of failing hours in.

Each job's configuration is composed as Hydra composes it, but cheaply: the config-group choices
(``loss=pf``, ``experiment=...``) are composed once per distinct combination, and the job's value
overrides (``ir=100``, ``loss.scale=0.5``) are applied to a copy. A job whose overrides this does
not cover (a deletion ``~key``) is composed in full. Then, without loading data or training, each
job must pass what the run checks first (:func:`imbloss.checks.check_run_config`) and:

- the data module's constructor (protocol, ``ir``, sampler and its options, label noise, source
  options): no data is read;
- the loss built with its hyperparameters (on two placeholder class counts);
- the optimiser built over one placeholder parameter, and the learning-rate schedule;
- the Lightning trainer built from ``trainer`` (precision, devices, strategy, ...);
- its folder: one that another configuration claimed (:func:`imbloss.runs.folder.folder_conflict`),
  or one that another process is training (:func:`imbloss.runs.lock.run_folder_busy`).

Checks of equal configuration nodes are made once. The network is not built: its input shape is
known only once the data are loaded.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra import compose
from hydra._internal.config_loader_impl import get_overrides_dirname
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from imbloss.checks import check_run_config
from imbloss.errors import find_user_error
from imbloss.runs.folder import folder_conflict
from imbloss.runs.lock import run_folder_busy

PLACEHOLDER_COUNTS = [100, 10]
JOB_NUM_SUBDIR = "${hydra.job.num}"
OVERRIDE_DIRNAME_SUBDIR = "${hydra.job.override_dirname}"


@dataclass(frozen=True)
class BadJob:
    """A job that would fail: its number in the sweep, its overrides, one line why."""

    number: int
    overrides: tuple[str, ...]
    message: str


def _message(error: BaseException) -> str:
    """One line: a user error's own message, or the innermost cause's type and first line."""
    user_error = find_user_error(error)
    if user_error is not None:
        return str(user_error)
    while error.__cause__ is not None:
        error = error.__cause__
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"


class _Composer:
    """Job configurations: one Hydra composition per distinct set of config-group choices."""

    def __init__(self, config_name: str) -> None:
        self.config_name = config_name
        self.repository = GlobalHydra.instance().config_loader().repository  # type: ignore[attr-defined]
        self.cache: dict[tuple[str, ...], DictConfig] = {}

    def _is_group(self, override: Override) -> bool:
        return self.repository.group_exists(override.key_or_group)

    def compose(self, overrides: Sequence[str]) -> DictConfig:
        """The job's configuration (no ``hydra`` node); Hydra's current config is kept."""
        saved = HydraConfig.instance().cfg
        try:
            return self._compose(overrides)
        finally:
            HydraConfig.instance().cfg = saved

    def _compose(self, overrides: Sequence[str]) -> DictConfig:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
        if any(o.is_delete() for o in parsed):
            return compose(config_name=self.config_name, overrides=list(overrides))
        groups = tuple(o.input_line for o in parsed if self._is_group(o))
        if groups not in self.cache:
            self.cache[groups] = compose(config_name=self.config_name, overrides=list(groups))
        cfg = self.cache[groups].copy()
        with open_dict(cfg):
            for override in parsed:
                if not self._is_group(override):
                    OmegaConf.update(
                        cfg,
                        override.key_or_group,
                        override.value(),
                        merge=True,
                        force_add=override.is_add() or override.is_force_add(),
                    )
        return cfg


def _node_key(node: Any) -> str:
    plain = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
    return json.dumps(plain, sort_keys=True, default=str)


def _checks() -> dict[str, Callable[[DictConfig], object]]:
    """Each check: what it builds from a job's configuration, without data or training."""

    def trainer(cfg: DictConfig) -> object:
        with tempfile.TemporaryDirectory() as scratch:
            return instantiate(
                cfg.trainer,
                logger=False,
                callbacks=[],
                enable_checkpointing=False,
                default_root_dir=scratch,
            )

    return {
        "dataset": lambda cfg: instantiate(cfg.dataset),
        "loss": lambda cfg: instantiate(cfg.loss, class_counts=PLACEHOLDER_COUNTS),
        "optimizer": lambda cfg: instantiate(cfg.optimizer)([torch.zeros(1, requires_grad=True)]),
        "scheduler": lambda cfg: instantiate(cfg.scheduler),
        "trainer": trainer,
    }


def override_dirname(config: DictConfig, overrides: Sequence[str]) -> str:
    """``hydra.job.override_dirname`` of a job with ``overrides`` in the multirun ``config``."""
    settings = config.hydra.job.config.override_dirname
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return get_overrides_dirname(
        parsed, list(settings.exclude_keys), settings.item_sep, settings.kv_sep
    )


def job_folder_name(config: DictConfig, overrides: Sequence[str], number: int) -> str | None:
    """The folder Hydra gives the multirun job ``number`` with ``overrides`` below the sweep
    folder, for the two usual ``hydra.sweep.subdir`` patterns (the job number, or
    ``override_dirname``); None for another pattern (known only once the job starts)."""
    subdir = OmegaConf.to_container(config.hydra.sweep, resolve=False)["subdir"]  # type: ignore[index]
    if subdir == JOB_NUM_SUBDIR:
        return str(number)
    if subdir == OVERRIDE_DIRNAME_SUBDIR:
        return override_dirname(config, overrides)
    return None


def check_sweep(config: DictConfig, jobs: Sequence[Sequence[str]]) -> list[BadJob]:
    """Every job of ``jobs`` (each its list of overrides) that would fail, in order.
    ``config`` is the multirun's (with its ``hydra`` node): ``${hydra:...}`` resolves against it
    while the jobs are checked."""
    saved = HydraConfig.instance().cfg
    HydraConfig.instance().set_config(config)
    try:
        return _check_jobs(config, jobs)
    finally:
        HydraConfig.instance().cfg = saved


def _check_jobs(config: DictConfig, jobs: Sequence[Sequence[str]]) -> list[BadJob]:
    composer = _Composer(config.hydra.job.config_name)
    checks = _checks()
    verdicts: dict[tuple[str, str], str | None] = {}
    bad = []
    current = HydraConfig.instance().cfg
    for number, overrides in enumerate(jobs):
        with read_write(current.hydra.job), open_dict(current.hydra.job):
            current.hydra.job.num = number  # what ${job_devices:...} reads, as in the job
        try:
            cfg = composer.compose(overrides)
            check_run_config(cfg)
            for name, check in checks.items():
                key = (name, _node_key(cfg[name]))
                if key not in verdicts:
                    try:
                        check(cfg)
                        verdicts[key] = None
                    except Exception as error:
                        verdicts[key] = _message(error)
                if verdicts[key] is not None:
                    raise _Failed(verdicts[key])
            name = job_folder_name(config, overrides, number)
            if name is not None:  # another pattern: the folder is checked when the job starts
                folder = Path(config.hydra.sweep.dir) / name
                conflict = folder_conflict(folder, OmegaConf.to_container(cfg, resolve=False))
                if conflict is not None:
                    raise _Failed(conflict)
                busy = run_folder_busy(folder)
                if busy is not None:
                    raise _Failed(busy)
        except _Failed as failed:
            bad.append(BadJob(number, tuple(overrides), str(failed)))
        except Exception as error:
            bad.append(BadJob(number, tuple(overrides), _message(error)))
    return bad


class _Failed(Exception):
    """A check's message for the job at hand."""
