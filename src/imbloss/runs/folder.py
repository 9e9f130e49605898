"""Whether a job may use its folder, and how: the one place every launcher asks.

A job's folder (a run's ``hydra.run.dir``, a multirun member's ``<hydra.sweep.dir>/<n>``) is in one
of four states, read from its files alone (:func:`folder_state`):

- ``finished``: ``metrics.json`` with status "ok" — the job is not run again;
- ``failed``: ``error.json`` and no finished ``metrics.json`` — the job is retried from the start;
- ``resumable``: ``checkpoints/last.ckpt`` and neither of the above — training continues from it;
- ``new``: none of these (a job killed before its first epoch ended starts again).

A folder is reused only by the configuration that made it. The first job that claims a folder
(:func:`claim_folder`) keeps its configuration, and copies of Hydra's files, in ``.hydra/claimed/``;
a later job whose configuration differs from it — ignoring :data:`NON_RESULT_KEYS`, which change
where files go or how progress is shown but not what is trained — is refused with a
:class:`FolderConflictError` naming the folder and the keys, and Hydra's files (which Hydra rewrote
before the job began) are put back as they were. A job that finds the work finished puts them
back too (:func:`restore_hydra_files`): a finished run's ``.hydra/`` stays that of the job that
made it.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf

from imbloss.errors import ConfigError
from imbloss.runs.layout import (
    CLAIM_DIR,
    CONFIG_FILE,
    CURVES_FILE,
    ERROR_FILE,
    LAST_CHECKPOINT_FILE,
    PREDICTIONS_FILE,
    WANDB_ID_FILE,
    RunFolder,
)
from imbloss.runs.outputs import atomic_file
from imbloss.runs.readers import read_json_file

HYDRA_DIR = CONFIG_FILE.parent
CLAIMED_CONFIG = CLAIM_DIR / "config.yaml"
# Outputs of an attempt that a fresh start removes (a retried or restarted job).
ATTEMPT_OUTPUTS = (
    LAST_CHECKPOINT_FILE.parent,
    CURVES_FILE.parent,
    ERROR_FILE,
    PREDICTIONS_FILE,
    WANDB_ID_FILE,  # a run started afresh is a new W&B run
)
# Dotted config keys that do not change what a job trains: they may differ on a re-run.
NON_RESULT_KEYS = (
    "hydra",
    "paths",
    "logger",
    "tags",
    "dataset.data_dir",
    "trainer.enable_progress_bar",
    "checkpoints",
    "callbacks.model_checkpoint.save_weights_only",
    "stop_at_epoch",  # where a rung stops the run: its schedule stays trainer.max_epochs
    "shots",  # how metrics.json groups the classes (it records them), not what is trained
    "experiment.published",  # the papers' figures a preset's runs are set beside in the report
)
# Result keys added after runs were made, with the value those runs had in effect: a claimed
# configuration without one reads as holding it when the job's configuration has the key (a
# folder made before the key existed is the same job), and the report leaves a loss
# hyperparameter out of a run's ``hparams`` when it holds that value, so that runs made before
# and after the key read alike.
KEYS_ADDED_LATER = {"loss.reduction": "weighted_mean"}
# What ``checkpoints`` keeps of a finished run: both checkpoints, the selected one, or neither.
CHECKPOINT_POLICIES = ("all", "best", "none")


class FolderState(str, Enum):
    NEW = "new"
    FINISHED = "finished"
    FAILED = "failed"
    RESUMABLE = "resumable"


class FolderConflictError(ConfigError):
    """A job folder holds the work of another configuration."""


def folder_state(folder: Path) -> FolderState:
    """The state of ``folder`` from its files (a corrupt ``metrics.json`` is a RunFileError)."""
    files = RunFolder(folder)
    if files.metrics.is_file() and read_json_file(files.metrics).get("status", "ok") == "ok":
        return FolderState.FINISHED
    if files.error.is_file():
        return FolderState.FAILED
    if files.last_checkpoint.is_file():
        return FolderState.RESUMABLE
    return FolderState.NEW


def _result_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` as plain YAML data (interpolations unresolved), without NON_RESULT_KEYS."""
    data = yaml.safe_load(OmegaConf.to_yaml(OmegaConf.create(dict(config)))) or {}
    for dotted in NON_RESULT_KEYS:
        *parents, last = dotted.split(".")
        node = data
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(last, None)
    return data


def _with_keys_added_later(old: dict[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """``old`` holding the value of every key of ``KEYS_ADDED_LATER`` it lacks and ``new`` has."""
    for dotted, value in KEYS_ADDED_LATER.items():
        *parents, last = dotted.split(".")
        old_node: Any = old
        new_node: Any = new
        for part in parents:
            old_node = old_node.get(part) if isinstance(old_node, dict) else None
            new_node = new_node.get(part) if isinstance(new_node, Mapping) else None
        holds = isinstance(old_node, dict) and isinstance(new_node, Mapping)
        if holds and last in new_node and last not in old_node:
            old_node[last] = value
    return old


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """The dotted keys whose values differ between two nested mappings."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new), key=str)
        return [
            diff
            for key in keys
            for diff in _differences(old.get(key), new.get(key), f"{prefix}{key}.")
        ]
    return [] if old == new else [prefix.rstrip(".")]


def restore_hydra_files(folder: Path) -> None:
    """Put the claiming job's copies of Hydra's files back into ``.hydra/`` (Hydra rewrote them
    for the job now running: a refused job, or one that finds the work done)."""
    for copy in (folder / CLAIM_DIR).glob("*.yaml"):
        shutil.copyfile(copy, folder / HYDRA_DIR / copy.name)


def _record_claim(folder: Path, config: Mapping[str, Any]) -> None:
    """Copy Hydra's files into ``.hydra/claimed/`` and write the claiming configuration there."""
    claim_dir = folder / CLAIM_DIR
    claim_dir.mkdir(parents=True, exist_ok=True)
    for hydra_file in (folder / HYDRA_DIR).glob("*.yaml"):
        shutil.copyfile(hydra_file, claim_dir / hydra_file.name)
    with atomic_file(folder / CLAIMED_CONFIG) as handle:
        handle.write(OmegaConf.to_yaml(OmegaConf.create(dict(config))).encode())


def folder_conflict(folder: Path, config: Mapping[str, Any]) -> str | None:
    """Why a job with ``config`` may not use ``folder`` (one line), or None if it may: the folder
    holds work without a record of its configuration, or was claimed by another one. Reads only.
    """
    folder = Path(folder)
    claimed = folder / CLAIMED_CONFIG
    if not claimed.is_file():
        state = folder_state(folder)
        if state is FolderState.NEW:
            return None
        return (
            f"job folder {folder} holds {state.value} work but no record of the configuration "
            f"that made it ({CLAIMED_CONFIG}); it is not reused: choose another folder "
            "(hydra.run.dir / hydra.sweep.dir) or remove it"
        )
    with claimed.open() as handle:
        old = yaml.safe_load(handle) or {}
    new = _result_config(config)
    changed = _differences(_with_keys_added_later(_result_config(old), new), new)
    if not changed:
        return None
    return (
        f"job folder {folder} was made with another configuration (differs in: "
        f"{', '.join(changed)}); it is not reused: choose another folder "
        "(hydra.run.dir / hydra.sweep.dir) or remove it"
    )


def claim_folder(folder: Path, config: Mapping[str, Any]) -> FolderState:
    """Claim ``folder`` for a job with ``config``; its state, or FolderConflictError.

    ``config`` is the job's composed configuration (OmegaConf container or plain mapping,
    interpolations unresolved, as Hydra writes it to ``.hydra/config.yaml``).
    """
    folder = Path(folder)
    conflict = folder_conflict(folder, config)
    if conflict is not None:
        if (folder / CLAIMED_CONFIG).is_file():
            restore_hydra_files(folder)
        raise FolderConflictError(conflict)
    if not (folder / CLAIMED_CONFIG).is_file():
        _record_claim(folder, config)
    return folder_state(folder)


def clear_attempt(folder: Path) -> None:
    """Remove what an earlier attempt left (checkpoints, CSV log, error, predictions)."""
    for name in ATTEMPT_OUTPUTS:
        path = Path(folder) / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def prune_checkpoints(folder: Path, keep: str) -> None:
    """Remove the checkpoints a finished run no longer needs: ``last.ckpt`` and a stacked
    member's ``last_stacked.pt`` (kept only for ``all``, e.g. a run a sweeper will continue) and,
    for ``none``, ``best.ckpt`` too; the ``checkpoints`` folder goes once empty. Call it after
    ``metrics.json`` is written."""
    run = RunFolder(Path(folder))
    if keep != "all":
        run.last_checkpoint.unlink(missing_ok=True)
        run.stacked_state.unlink(missing_ok=True)
    if keep == "none":
        run.best_checkpoint.unlink(missing_ok=True)
    directory = run.best_checkpoint.parent
    if directory.is_dir() and not any(directory.iterdir()):
        directory.rmdir()
