"""The results campaign: its stages in order of priority, their grids, and the folders they fill.

Every stage is one or more multiruns of ``train.py`` with ``campaign=fmnist``
(``conf/campaign/fmnist.yaml``): one fixed folder, ``results/fmnist_step``, and one subfolder per
job named after its overrides, sorted (Hydra's ``override_dirname``). The same job of two stages is
therefore one folder: a finished job is never trained twice, and running a stage again continues
it. :func:`job_dirname` names those folders, so the report can count what each stage still lacks.

Two decisions, each measured by a stage of its own, fix the settings of the later stages
(docs/results.md gives the measurements): ``PRECISION``, from the paired bf16-against-float32
stage, and ``EPOCHS``, the campaign's schedule, confirmed (``EPOCHS_CONFIRMED``) or changed by
the paired 200-epoch stage. Until a decision is recorded here, the stages that rest on it refuse
to start: the schedule stage waits for the precision, the others for both.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from imbloss.errors import ConfigError

CAMPAIGN = "fmnist"
CAMPAIGN_DIR = "results/fmnist_step"
# The decisions; see docs/results.md, "Precision" and "Schedule". PRECISION None: not decided
# yet; EPOCHS is the candidate schedule until the schedule stage confirms it.
PRECISION: str | None = "32-true"
EPOCHS = 60
EPOCHS_CONFIRMED = True
# The fit time (s) of one fmnist_cnn job at EPOCHS epochs with today's code, 2 jobs side by side
# with 1 thread each, per precision: the estimate of the time left takes these over the mean of
# the finished runs, which slower code trained (docs/performance.md, "The cost of a run").
JOB_FIT_S: dict[str, float] = {"32-true": 1000.0, "bf16-mixed": 468.0}
DECISIONS = ("precision", "schedule")
SOURCE_LOSSES = ("pf", "wce", "focal", "focal_alpha", "ldam", "wldam")
# `la` at tau = 1 is `bsm` (the same loss: bit-identical runs), so only `bsm` runs.
BASELINE_LOSSES = ("ce", "bsm")
SEEDS = (0, 1, 2)
EXTRA_SEEDS = (3, 4)  # for pf and wce at IR=100 and 200
PRECISION_CHECK_LOSSES = ("pf", "wce", "ldam")
PRECISION_CHECK_EPOCHS = 60
SCHEDULE_CHECK_LOSSES = ("pf", "wce")
SOURCE_EPOCHS = 200

Grid = Mapping[str, str]  # override key -> comma-separated values (Hydra's sweep syntax)


@dataclass(frozen=True)
class Stage:
    """One step of the campaign: its multiruns (``grids``) and whether it needs the decisions."""

    name: str
    purpose: str
    grids: tuple[Grid, ...]
    needs: tuple[str, ...] = DECISIONS  # the decisions it waits for

    def jobs(self) -> list[dict[str, str]]:
        """Every job of the stage, as its overrides (key -> one value), in the order Hydra runs
        them; jobs shared by two grids once."""
        seen: dict[str, dict[str, str]] = {}
        for grid in self.grids:
            for job in grid_jobs(grid):
                seen.setdefault(job_dirname(job), job)
        return list(seen.values())


def _values(values: Sequence[object]) -> str:
    return ",".join(str(v) for v in values)


def grid_jobs(grid: Grid) -> list[dict[str, str]]:
    """The cartesian product of a grid, the last key varying fastest (Hydra's basic sweeper)."""
    keys = list(grid)
    choices = [grid[key].split(",") for key in keys]
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*choices)]


def job_dirname(job: Mapping[str, str]) -> str:
    """The folder of one job below the campaign folder: Hydra's ``override_dirname`` of its
    overrides (``key=value`` sorted, joined by commas; ``campaign`` excluded)."""
    return ",".join(sorted(f"{k}={v}" for k, v in job.items() if k != "campaign"))


def stages(precision: str | None = None, epochs: int | None = None) -> list[Stage]:
    """The campaign's stages in order of priority, at ``precision`` and ``epochs`` (default: the
    recorded decisions, ``PRECISION`` and ``EPOCHS``)."""
    precision = PRECISION if precision is None else precision
    epochs = EPOCHS if epochs is None else epochs
    fixed = {"trainer.max_epochs": str(epochs), "trainer.precision": str(precision)}
    step = {"experiment": "fmnist_step"}
    all_losses = _values((*SOURCE_LOSSES, *BASELINE_LOSSES))

    def ir_stage(ir: int, extra_seeds: bool) -> Stage:
        # The extra seeds of pf and wce run first: with seeds 0-2 of both from the earlier stages,
        # they complete the headline pair before the other losses start.
        grids: list[Grid] = []
        if extra_seeds:
            grids.append(
                {
                    **step,
                    "ir": str(ir),
                    "loss": _values(SCHEDULE_CHECK_LOSSES),
                    "seed": _values(EXTRA_SEEDS),
                    **fixed,
                }
            )
        grids.append({**step, "ir": str(ir), "loss": all_losses, "seed": _values(SEEDS), **fixed})
        purpose = f"Table IV/VI at IR={ir}: the source's six losses and the baselines"
        return Stage(f"ir{ir}", purpose, tuple(grids))

    return [
        Stage(
            "precision",
            f"bf16-mixed against 32-true, paired seeds, IR=100, {PRECISION_CHECK_EPOCHS} epochs",
            (
                {
                    **step,
                    "ir": "100",
                    "loss": _values(PRECISION_CHECK_LOSSES),
                    "seed": _values(SEEDS),
                    "trainer.max_epochs": str(PRECISION_CHECK_EPOCHS),
                    "trainer.precision": "32-true,bf16-mixed",
                },
            ),
            needs=(),
        ),
        Stage(
            "schedule",
            f"the source's {SOURCE_EPOCHS} epochs against the campaign's, paired seeds, IR=100",
            (
                {
                    **step,
                    "ir": "100",
                    "loss": _values(SCHEDULE_CHECK_LOSSES),
                    "seed": "0,1",
                    "trainer.max_epochs": str(SOURCE_EPOCHS),
                    "trainer.precision": str(precision),
                },
            ),
            needs=("precision",),
        ),
        ir_stage(100, extra_seeds=True),
        ir_stage(200, extra_seeds=True),
        ir_stage(10, extra_seeds=False),
        Stage(
            "label_noise",
            "robustness to label noise (Sec. III-D), IR=100; noise 0 is stage ir100",
            (
                {
                    **step,
                    "ir": "100",
                    "loss": "pf,wce,ce",
                    "dataset.label_noise": "0.2,0.4",
                    "seed": _values(SEEDS),
                    **fixed,
                },
            ),
        ),
        Stage(
            "resampling",
            "resampling against a loss (Sec. II), IR=100; sampler=none is stage ir100",
            (
                {
                    **step,
                    "ir": "100",
                    "loss": "ce,pf",
                    "sampler": "oversample,class_balanced,drs",
                    "seed": _values(SEEDS),
                    **fixed,
                },
            ),
        ),
        Stage(
            "binary",
            "the second source's claim, a Fashion-MNIST analogue: Shirt against the rest at "
            "10 % and 5 % minority, its MLP and SGD, float32, the campaign's schedule",
            (
                {
                    "experiment": "fmnist_binary",
                    "ir": "null,19",
                    "loss": "mse,mfe,msfe,ce,wce",
                    "seed": _values(SEEDS),
                    "trainer.max_epochs": str(epochs),
                    "trainer.precision": "32-true",  # bf16 is checked for the CNN only
                },
            ),
        ),
    ]


def stage_named(name: str, all_stages: Sequence[Stage]) -> Stage:
    """The stage called ``name``; a ConfigError naming the accepted ones otherwise."""
    for stage in all_stages:
        if stage.name == name:
            return stage
    accepted = ", ".join(s.name for s in all_stages)
    raise ConfigError(f"unknown campaign stage {name!r}; accepted: {accepted}")


def undecided() -> set[str]:
    """The decisions not recorded yet."""
    missing = set() if PRECISION is not None else {"precision"}
    return missing if EPOCHS_CONFIRMED else missing | {"schedule"}


def check_decided(stage: Stage) -> None:
    """A ConfigError if ``stage`` rests on a decision not recorded yet."""
    waiting = [name for name in stage.needs if name in undecided()]
    if waiting:
        measured_by = {"precision": "precision", "schedule": "schedule"}
        raise ConfigError(
            f"campaign stage {stage.name!r} needs the {' and '.join(waiting)} decision(s), which "
            f"the stage(s) {', '.join(repr(measured_by[w]) for w in waiting)} measure; record "
            "them in imbloss/results/plan.py (PRECISION, EPOCHS_CONFIRMED; see docs/results.md)"
        )


def stage_commands(stage: Stage) -> list[list[str]]:
    """The ``train.py -m`` arguments of each multirun of ``stage``."""
    return [
        ["-m", f"campaign={CAMPAIGN}", *(f"{k}={v}" for k, v in grid.items())]
        for grid in stage.grids
    ]
