"""A campaign as configuration: ``campaigns/<name>.yaml`` read into :class:`CampaignConfig`.

A campaign file declares everything that varies between campaigns, and the code reads any such
file:

- ``name``, ``title``, ``dir`` (the folder of its runs, below the repository root), ``page`` (the
  claims page it writes), ``job_config`` (the ``conf/campaign/`` option every job gets);
- ``replicate_keys`` (default ``[seed]``) and ``replicates`` (a count: replicates 0 .. count - 1,
  or a list): replicate k is the job with every replicate key set to k (``[seed, dataset.seed]``:
  the training seed and the subsampling seed); the first key names the folders;
- ``fixed``: overrides every job gets, not part of the folder names;
- ``stages``, in order of priority: each a ``grid`` (or ``grids``, each with its own
  ``replicates``/``fixed``) of override key -> value or list of values, and a ``purpose``;
- ``reuse``: folders holding finished runs of this campaign's jobs made before it, with the
  overrides that the same job's folder name carries there (``add``);
- ``earlier``: campaigns whose runs the page shows beside this one's;
- ``rules`` (how a claim is decided), ``claims``, ``checks`` (decisions measured by a stage),
  ``headline`` (the README's table) and ``sources`` (the source's figures beside ours).

Every value is kept as the string Hydra's command line takes (``100``, ``0.2``, ``null``); a
YAML ``null`` in a claim's ``baseline`` means "the key is absent". :func:`load_campaign` checks the
file and raises a ConfigError naming what is wrong and what is accepted.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from imbloss.errors import ConfigError

CAMPAIGNS_FOLDER = "campaigns"
DEFAULT_CAMPAIGN = "fmnist"
CLAIM_KINDS = ("difference", "similarity", "robustness")
SIMILARITY_TESTS = ("tost", "interval")

Job = dict[str, str]  # override key -> one value, as on Hydra's command line


def override_value(value: object) -> str:
    """``value`` as Hydra's command line writes it (YAML ``null`` -> ``null``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def sweep_values(value: object) -> list[str]:
    """A grid entry's values: a list, or one value."""
    if isinstance(value, list | tuple):
        return [override_value(v) for v in value]
    return [override_value(value)]


def expand(grid: Mapping[str, object]) -> list[Job]:
    """The cartesian product of ``grid`` (the last key varying fastest, as Hydra's basic sweeper
    runs it)."""
    keys = list(grid)
    return [
        dict(zip(keys, combo, strict=True))
        for combo in itertools.product(*(sweep_values(grid[k]) for k in keys))
    ]


def job_dirname(job: Mapping[str, str]) -> str:
    """A job's folder below the campaign folder: Hydra's ``override_dirname`` of the overrides
    that name it (``key=value`` sorted, joined by commas)."""
    return ",".join(sorted(f"{k}={v}" for k, v in job.items()))


@dataclass(frozen=True)
class Grid:
    """One multirun's worth of jobs: its swept overrides, the stage's fixed ones, its replicates."""

    overrides: Mapping[str, object]
    fixed: Mapping[str, str]
    replicates: tuple[int, ...]


@dataclass(frozen=True)
class Stage:
    """One step of the campaign, in order of priority."""

    name: str
    purpose: str
    grids: tuple[Grid, ...]


@dataclass(frozen=True)
class Reuse:
    """A folder of earlier runs of this campaign's jobs, named there with ``add`` added."""

    dir: str
    add: Mapping[str, str]


@dataclass(frozen=True)
class CampaignConfig:
    """A campaign file, checked (:func:`load_campaign`)."""

    name: str
    title: str
    dir: str
    page: str
    job_config: str
    replicate_keys: tuple[str, ...]
    replicates: tuple[int, ...]
    fixed: Mapping[str, str]
    stages: tuple[Stage, ...]
    reuse: tuple[Reuse, ...] = ()
    earlier: tuple[str, ...] = ()
    rules: Mapping[str, Any] = field(default_factory=dict)
    claims: tuple[Mapping[str, Any], ...] = ()
    checks: tuple[Mapping[str, Any], ...] = ()
    headline: Mapping[str, Any] | None = None
    sources: tuple[Mapping[str, Any], ...] = ()
    path: Path | None = None

    @property
    def replicate_key(self) -> str:
        """The replicate key that names the folders (the others follow it)."""
        return self.replicate_keys[0]

    def stage(self, name: str) -> Stage:
        """The stage called ``name``; a ConfigError naming the accepted ones otherwise."""
        for stage in self.stages:
            if stage.name == name:
                return stage
        accepted = ", ".join(s.name for s in self.stages)
        raise ConfigError(f"unknown stage {name!r} of campaign {self.name!r}; accepted: {accepted}")

    def grid_jobs(self, grid: Grid, replicates: int | None = None) -> list[Job]:
        """The jobs of ``grid`` that name folders (swept keys, stage-fixed keys, replicate), in
        the order they run; ``replicates``: only replicates below that number."""
        chosen = [k for k in grid.replicates if replicates is None or k < replicates]
        return [
            {**grid.fixed, **point, self.replicate_key: str(k)}
            for k in chosen
            for point in expand(grid.overrides)
        ]

    def stage_jobs(self, stage: Stage, replicates: int | None = None) -> list[Job]:
        """Every job of ``stage`` once (a job of two grids counts once)."""
        seen: dict[str, Job] = {}
        for grid in stage.grids:
            for job in self.grid_jobs(grid, replicates):
                seen.setdefault(job_dirname(job), job)
        return list(seen.values())

    def jobs(self, replicates: int | None = None) -> list[Job]:
        """Every job of every stage once, in order of priority."""
        seen: dict[str, Job] = {}
        for stage in self.stages:
            for job in self.stage_jobs(stage, replicates):
                seen.setdefault(job_dirname(job), job)
        return list(seen.values())

    def full_overrides(self, job: Mapping[str, str]) -> Job:
        """A job's every override: the campaign's fixed ones, then the job's, then the replicate
        keys that follow the first."""
        replicate = job[self.replicate_key]
        return {**self.fixed, **job, **{key: replicate for key in self.replicate_keys[1:]}}

    def root(self, repo: Path, folder: str | None = None) -> Path:
        """The campaign folder (``folder`` if given) below the repository root ``repo``."""
        return repo / (folder if folder is not None else self.dir)


def campaigns_dir(repo: Path | None = None) -> Path:
    """The folder of the campaign files: ``campaigns/`` in the repository root (``repo``, else
    the working directory)."""
    return (repo if repo is not None else Path.cwd()) / CAMPAIGNS_FOLDER


def available_campaigns(repo: Path | None = None) -> list[str]:
    """The names of the campaign files."""
    return sorted(p.stem for p in campaigns_dir(repo).glob("*.yaml"))


def _mapping(value: object, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a mapping of override key -> value; got {value!r}")
    return dict(value)


def _replicates(value: object, where: str) -> tuple[int, ...]:
    """A count n (replicates 0 .. n - 1) or a list of distinct non-negative integers."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return tuple(range(value))
    if (
        isinstance(value, list)
        and value
        and all(isinstance(k, int) and not isinstance(k, bool) and k >= 0 for k in value)
        and len(set(value)) == len(value)
    ):
        return tuple(value)
    raise ConfigError(
        f"{where}={value!r} is not a set of replicates; accepted: a count >= 1, or a list of "
        "distinct integers >= 0"
    )


def _replicate_keys(value: object) -> tuple[str, ...]:
    if isinstance(value, list) and value and all(isinstance(k, str) and k for k in value):
        return tuple(value)
    raise ConfigError(
        f"replicate_keys={value!r}; accepted: a list of override keys, e.g. [seed, dataset.seed]"
    )


def _stage(raw: Mapping[str, Any], default_replicates: tuple[int, ...], index: int) -> Stage:
    where = f"stages[{index}]"
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}.name={name!r} is missing; accepted: a non-empty string")
    stage_fixed = {k: override_value(v) for k, v in _mapping(raw.get("fixed"), where).items()}
    stage_replicates = (
        _replicates(raw["replicates"], f"{where}.replicates")
        if "replicates" in raw
        else default_replicates
    )
    if ("grid" in raw) == ("grids" in raw):
        raise ConfigError(f"stage {name!r} needs exactly one of 'grid' and 'grids'")
    raw_grids = [{"grid": raw["grid"]}] if "grid" in raw else list(raw["grids"])
    grids = []
    for number, entry in enumerate(raw_grids):
        label = f"stage {name!r}, grid {number}"
        overrides = _mapping(entry.get("grid"), label)
        if not overrides:
            raise ConfigError(f"{label} is empty; accepted: override key -> value or list")
        fixed = {
            **stage_fixed,
            **{k: override_value(v) for k, v in _mapping(entry.get("fixed"), label).items()},
        }
        replicates = (
            _replicates(entry["replicates"], f"{label}.replicates")
            if "replicates" in entry
            else stage_replicates
        )
        grids.append(Grid(overrides, fixed, replicates))
    return Stage(name, str(raw.get("purpose", "")), tuple(grids))


def _check_claims(claims: Sequence[Mapping[str, Any]], name: str) -> None:
    for number, claim in enumerate(claims):
        kind = claim.get("kind")
        if kind not in CLAIM_KINDS:
            raise ConfigError(
                f"campaign {name!r}, claims[{number}].kind={kind!r} is unknown; accepted: "
                f"{', '.join(CLAIM_KINDS)}"
            )
        needed = ("reference", "others") if kind == "similarity" else ("a", "b")
        missing = [key for key in ("text", *needed) if key not in claim]
        if missing:
            raise ConfigError(
                f"campaign {name!r}, claims[{number}] ({kind}) lacks {', '.join(missing)}"
            )


def parse_campaign(raw: Mapping[str, Any], path: Path | None = None) -> CampaignConfig:
    """A :class:`CampaignConfig` from a campaign file's mapping, checked."""
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"campaign file {path}: name={name!r}; accepted: a non-empty string")
    for key in ("dir", "page", "job_config"):
        if not isinstance(raw.get(key), str):
            raise ConfigError(f"campaign {name!r}: {key}={raw.get(key)!r}; accepted: a string")
    replicates = _replicates(raw.get("replicates", 1), "replicates")
    fixed = {k: override_value(v) for k, v in _mapping(raw.get("fixed"), "fixed").items()}
    stages = tuple(
        _stage(stage, replicates, number) for number, stage in enumerate(raw.get("stages") or [])
    )
    if not stages:
        raise ConfigError(f"campaign {name!r} has no stages; accepted: a list under 'stages'")
    names = [stage.name for stage in stages]
    if len(set(names)) != len(names):
        raise ConfigError(f"campaign {name!r} names a stage twice: {names}")
    reuse = tuple(
        Reuse(str(entry["dir"]), {k: override_value(v) for k, v in entry["add"].items()})
        for entry in raw.get("reuse") or []
    )
    rules = dict(raw.get("rules") or {})
    if rules.get("similarity", "tost") not in SIMILARITY_TESTS:
        raise ConfigError(
            f"campaign {name!r}: rules.similarity={rules['similarity']!r}; accepted: "
            f"{', '.join(SIMILARITY_TESTS)}"
        )
    claims = tuple(raw.get("claims") or [])
    _check_claims(claims, name)
    return CampaignConfig(
        name=name,
        title=str(raw.get("title", name)),
        dir=raw["dir"],
        page=raw["page"],
        job_config=raw["job_config"],
        replicate_keys=_replicate_keys(raw.get("replicate_keys", ["seed"])),
        replicates=replicates,
        fixed=fixed,
        stages=stages,
        reuse=reuse,
        earlier=tuple(raw.get("earlier") or ()),
        rules=rules,
        claims=claims,
        checks=tuple(raw.get("checks") or []),
        headline=raw.get("headline"),
        sources=tuple(raw.get("sources") or []),
        path=path,
    )


def load_campaign(name: str = DEFAULT_CAMPAIGN, repo: Path | None = None) -> CampaignConfig:
    """The campaign ``campaigns/<name>.yaml``, checked; a ConfigError naming the available
    campaigns if there is no such file."""
    path = campaigns_dir(repo) / f"{name}.yaml"
    if not path.is_file():
        accepted = ", ".join(available_campaigns(repo)) or "none found"
        raise ConfigError(f"unknown campaign {name!r} (no {path}); accepted: {accepted}")
    with path.open() as handle:
        raw = yaml.safe_load(handle)
    if not isinstance(raw, Mapping):
        raise ConfigError(f"campaign file {path} does not hold a mapping")
    return parse_campaign(raw, path)
