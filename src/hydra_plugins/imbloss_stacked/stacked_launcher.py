"""``hydra/launcher=stacked``: every compatible job of a multirun trained as one stacked model.

The launcher composes every job of the sweep, groups the jobs whose configurations differ only in
``loss``, ``seed`` and per-job bookkeeping (:mod:`imbloss.stacked.grouping`), lets Hydra set up
each job's folder exactly as the basic launcher does, and trains each group with
:func:`imbloss.stacked.group.train_group`. A job that fits no group with others, or a group whose
training settings the stacked engine does not support, runs as with the basic launcher.

Settings (``hydra.launcher.<key>``): ``max_stack`` caps the members trained at once (null: no
cap beyond memory); ``memory_fraction`` is the share of the free device memory a pass may fill,
by the estimate of :mod:`imbloss.stacked.memory`; ``forward`` is ``auto`` (``vmap`` on a GPU,
``loop`` on the CPU), ``vmap`` or ``loop`` (:mod:`imbloss.stacked.network`); ``save_every_s``
is the least time in seconds between two saved training states of a pass, from which an
interrupted pass resumes (0: every epoch; :mod:`imbloss.stacked.group`).
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from hydra.core.config_store import ConfigStore
from hydra.core.utils import (
    JobReturn,
    JobStatus,
    configure_log,
    filter_overrides,
    run_job,
    setup_globals,
)
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

from imbloss.errors import ConfigError
from imbloss.stacked.grouping import FORWARD_MODES, group_jobs, group_key, stacking_obstacle

log = logging.getLogger(__name__)


@dataclass
class StackedLauncherConf:
    """Structured config of ``hydra/launcher=stacked`` (no postponed annotations here: Hydra's
    plugin scan loads this module outside ``sys.modules``, and OmegaConf reads the types)."""

    _target_: str = "hydra_plugins.imbloss_stacked.stacked_launcher.StackedLauncher"
    max_stack: Optional[int] = None  # noqa: UP045 - OmegaConf needs typing.Optional
    memory_fraction: float = 0.5
    forward: str = "auto"
    save_every_s: float = 600.0


ConfigStore.instance().store(
    group="hydra/launcher", name="stacked", node=StackedLauncherConf, provider="imbloss"
)


class StackedLauncher(Launcher):
    """Runs the sweep's jobs grouped into stacks; returns one ``JobReturn`` per job, in order."""

    def __init__(
        self,
        max_stack: int | None = None,
        memory_fraction: float = 0.5,
        forward: str = "auto",
        save_every_s: float = 600.0,
    ) -> None:
        if max_stack is not None and max_stack < 1:
            raise ConfigError(
                f"hydra.launcher.max_stack={max_stack} is out of range; accepted: an integer "
                ">= 1, or null"
            )
        if not 0 < memory_fraction <= 1:
            raise ConfigError(
                f"hydra.launcher.memory_fraction={memory_fraction} is out of range; accepted: "
                "0 < fraction <= 1"
            )
        if forward not in FORWARD_MODES:
            raise ConfigError(
                f"hydra.launcher.forward={forward!r} is unknown; accepted: "
                f"{', '.join(FORWARD_MODES)}"
            )
        if not save_every_s >= 0:
            raise ConfigError(
                f"hydra.launcher.save_every_s={save_every_s} is out of range; accepted: seconds "
                ">= 0 (0: a state after every epoch)"
            )
        self.max_stack = max_stack
        self.memory_fraction = memory_fraction
        self.forward = forward
        self.save_every_s = save_every_s
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        assert self.config is not None and self.hydra_context is not None
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        configs = []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
            config = self.hydra_context.config_loader.load_sweep_config(
                self.config, list(overrides)
            )
            with open_dict(config):
                config.hydra.job.id = idx
                config.hydra.job.num = idx
            configs.append(config)
        groups = group_jobs([_key_or_none(config) for config in configs])
        log.info(
            "Launching %d jobs as %d group(s) of %s",
            len(configs),
            len(groups),
            [len(group) for group in groups],
        )
        returns: list[JobReturn | None] = [None] * len(configs)
        for group in groups:
            for position, job_return in zip(group, self._run_group(configs, group), strict=True):
                returns[position] = job_return
            configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        return returns  # type: ignore[return-value]

    def _run(self, config: DictConfig, task_function: TaskFunction) -> JobReturn:
        return run_job(
            hydra_context=self.hydra_context,
            task_function=task_function,
            config=config,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )

    def _run_group(self, configs: list[DictConfig], group: list[int]) -> list[JobReturn]:
        from imbloss.stacked.group import MemberJob, capture_job, train_group

        obstacle = stacking_obstacle(configs[group[0]]) if len(group) > 1 else None
        if obstacle is not None:
            log.info("group of %d jobs runs one by one: %s", len(group), obstacle)
        if len(group) == 1 or obstacle is not None:
            return [self._run(configs[i], self.task_function) for i in group]
        returns = [self._run(configs[i], capture_job) for i in group]
        jobs = [MemberJob(r.return_value, configs[i]) for r, i in zip(returns, group, strict=True)]
        results = train_group(
            jobs, self.max_stack, self.memory_fraction, self.forward, self.save_every_s
        )
        for job_return, metrics in zip(returns, results, strict=True):
            job_return.return_value = metrics
            job_return.status = JobStatus.COMPLETED
        return returns


def _key_or_none(config: DictConfig) -> str | None:
    """The job's group key; None when its configuration cannot be resolved (it then runs alone
    and fails with its ``error.json`` as with the basic launcher)."""
    try:
        return group_key(config)
    except Exception as error:
        log.info("job runs alone: its configuration does not resolve (%s)", error)
        return None
