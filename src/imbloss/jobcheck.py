"""The checks every job passes before it creates or touches its folder: one code path.

A single run is checked by :class:`imbloss.multirun.callbacks.RunPreflight` (:func:`check_run`,
before Hydra creates ``hydra.run.dir``), each job of a multirun by
:func:`imbloss.multirun.preflight.check_sweep`, both with :class:`JobCheck`. Without loading
data or training, a job's configuration must pass:

- the run's own values (:func:`imbloss.checks.check_run_config`: ``seed``, epochs, ``threads``,
  ``checkpoints``);
- the data module's constructor (protocol, ``ir``, ``dataset.seed``, batch sizes, the sampler
  built over placeholder labels, label noise, the source's options): no data is read;
- the network, built for the source's image shape and two classes;
- the loss built with its hyperparameters (on two placeholder class counts);
- the optimiser built over one placeholder parameter, and the learning-rate schedule;
- the Lightning trainer built from ``trainer`` (precision, devices, strategy, ...);
- its folder: one that another process is training (:func:`imbloss.runs.lock.run_folder_busy`),
  or one that another configuration claimed (:func:`imbloss.runs.folder.folder_conflict`).

A value one of these objects refuses (a ValueError or TypeError of its constructor, also the one
Hydra's ``instantiate`` wraps) becomes a :class:`~imbloss.errors.ConfigError` naming the config
key and the value (:func:`refusals`), e.g. ``optimizer.lr=-1 is refused by torch.optim.Adam:
Invalid learning rate: -1; accepted: a number >= 0``. Any other error is a bug and is raised as
it is.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from imbloss.checks import check_run_config
from imbloss.errors import ConfigError, find_user_error
from imbloss.runs.folder import FolderConflictError, folder_conflict
from imbloss.runs.lock import FolderBusyError, run_folder_busy

PLACEHOLDER_COUNTS = [100, 10]
# What is accepted, for values whose constructor refuses them without saying so.
ACCEPTED = {
    "optimizer.lr": "a number >= 0",
    "optimizer.weight_decay": "a number >= 0",
    "optimizer.momentum": "a number >= 0",
}
# Lightning's loggers that report the accelerators whenever a trainer is built
LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric")


def _leaves(node: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    """The dotted keys and values of a resolved node's leaves (a list is one leaf), without
    Hydra's ``_target_``-like keys."""
    if isinstance(node, dict):
        for key, value in node.items():
            if not str(key).startswith("_"):
                yield from _leaves(value, f"{prefix}.{key}")
    else:
        yield prefix, node


def _mentions(text: str, value: Any) -> bool:
    """``text`` holds ``value`` (a number or string, or an item of a list) as a word of its own."""
    if isinstance(value, list):
        return any(_mentions(text, item) for item in value)
    if value is None or isinstance(value, bool) or str(value) == "":
        return False
    word = re.escape(str(value))
    return re.search(rf"(?<![\w.-]){word}(?![\w-]|\.\d)", text) is not None


def blamed_keys(key: str, node: DictConfig, text: str) -> list[tuple[str, Any]]:
    """The leaves of the config node ``key`` (dotted key, value) that an error message ``text``
    points at: those it names and whose value it holds, else those it names, else those whose
    value it holds (a name is a whole word, case ignored); several if they tie."""
    scored = []
    for dotted, value in _leaves(OmegaConf.to_container(node, resolve=True), key):
        name = re.escape(dotted.rsplit(".", 1)[-1])
        named = re.search(rf"\b{name}\b", text, re.IGNORECASE) is not None
        scored.append((2 * named + _mentions(text, value), dotted, value))
    best = max((score for score, _, _ in scored), default=0)
    return [(dotted, value) for score, dotted, value in scored if best and score == best]


def _constructor_error(error: BaseException) -> BaseException:
    """The error a constructor raised: the innermost cause of Hydra's wrapper."""
    while error.__cause__ is not None:
        error = error.__cause__
    return error


def refusal(key: str, node: DictConfig, error: BaseException) -> ConfigError | None:
    """``error``, raised while the object of the config node ``key`` was built, as one line
    naming the value it refused; None if it is no refusal of a value (a bug): neither a
    ValueError nor a TypeError, unless its message names one of the node's values."""
    cause = _constructor_error(error)
    text = " ".join(str(cause).split())
    blamed = blamed_keys(key, node, text)
    if not isinstance(cause, ValueError | TypeError) and not blamed:
        return None
    target = str(node.get("_target_", key))
    if not blamed:
        return ConfigError(f"{key} is refused by {target}: {text}")
    values = ", ".join(f"{dotted}={value!r}" for dotted, value in blamed)
    accepted = {ACCEPTED.get(dotted) for dotted, _ in blamed} - {None}
    tail = f"; accepted: {accepted.pop()}" if len(accepted) == 1 else ""
    return ConfigError(f"{values} is refused by {target}: {text}{tail}")


@contextmanager
def refusals(cfg: DictConfig, key: str) -> Iterator[None]:
    """Build the object of the config node ``key`` inside the block: a user error it raises
    comes out unwrapped (Hydra wraps it, see :func:`imbloss.errors.find_user_error`), a value it
    refuses as a ConfigError (:func:`refusal`), a bug as it is."""
    try:
        yield
    except Exception as error:
        user_error = find_user_error(error)
        if user_error is not None:
            raise user_error  # noqa: B904 (its own cause stays; Hydra's wrapper is its context)
        refused = refusal(key, cfg[key], error)
        if refused is None:
            raise
        raise refused from error


@contextmanager
def _quiet_lightning() -> Iterator[None]:
    """Lightning's INFO lines (``GPU available: ...``) left out: the real trainer prints them."""
    loggers = [logging.getLogger(name) for name in LIGHTNING_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _dataset(cfg: DictConfig) -> tuple[int, int, int]:
    return instantiate(cfg.dataset).input_shape


def _model(cfg: DictConfig, input_shape: tuple[int, int, int]) -> None:
    instantiate(cfg.model)(input_shape=input_shape, num_classes=len(PLACEHOLDER_COUNTS))


def _loss(cfg: DictConfig) -> None:
    instantiate(cfg.loss, class_counts=PLACEHOLDER_COUNTS)


def _optimizer(cfg: DictConfig) -> None:
    instantiate(cfg.optimizer)([torch.zeros(1, requires_grad=True)])


def _trainer(cfg: DictConfig) -> None:
    with tempfile.TemporaryDirectory() as scratch, _quiet_lightning():
        instantiate(
            cfg.trainer,
            logger=False,
            callbacks=[],
            enable_checkpointing=False,
            default_root_dir=scratch,
        )


def _node_key(node: Any) -> str:
    return json.dumps(OmegaConf.to_container(node, resolve=True), sort_keys=True, default=str)


class JobCheck:
    """Checks jobs (see the module's docstring); the verdicts of equal configuration nodes are
    kept, so that a sweep of many jobs builds each distinct object once."""

    def __init__(self) -> None:
        self._verdicts: dict[tuple[str, str], Any] = {}

    def _built(self, cfg: DictConfig, key: str, build: Callable[[], Any], *context: Any) -> Any:
        """``build()``'s result (what is kept of the object of node ``key``), or the error it
        raises, as :func:`refusals` gives it; remembered for an equal node (and ``context``)."""
        verdict_key = (key, _node_key(cfg[key]) + repr(context))
        if verdict_key not in self._verdicts:
            try:
                with refusals(cfg, key):
                    self._verdicts[verdict_key] = build()
            except Exception as error:
                self._verdicts[verdict_key] = error
        verdict = self._verdicts[verdict_key]
        if isinstance(verdict, Exception):
            raise verdict
        return verdict

    def __call__(self, cfg: DictConfig, folder: Path | None) -> None:
        """Raise the first problem of the job with configuration ``cfg`` (no ``hydra`` node;
        Hydra's current config is the run's or the multirun's) and folder ``folder`` (None: not
        known yet): a UserError for bad input, any other error for a bug."""
        check_run_config(cfg)
        input_shape = self._built(cfg, "dataset", lambda: _dataset(cfg))
        self._built(cfg, "model", lambda: _model(cfg, input_shape), input_shape)
        self._built(cfg, "loss", lambda: _loss(cfg))
        self._built(cfg, "optimizer", lambda: _optimizer(cfg))
        if cfg.get("scheduler") is not None:  # null: the optimiser's constant rate
            self._built(cfg, "scheduler", lambda: instantiate(cfg.scheduler))
        self._built(cfg, "trainer", lambda: _trainer(cfg))
        if folder is None:
            return
        busy = run_folder_busy(folder)  # first: what a busy folder holds is still changing
        if busy is not None:
            raise FolderBusyError(busy)
        conflict = folder_conflict(folder, OmegaConf.to_container(cfg, resolve=False))
        if conflict is not None:
            raise FolderConflictError(conflict)


@contextmanager
def current_hydra_config(config: DictConfig) -> Iterator[None]:
    """Make ``config`` (with its ``hydra`` node) Hydra's current config inside the block, as it
    is in a job: ``${hydra:...}`` and the job resolvers read it."""
    saved = HydraConfig.instance().cfg
    HydraConfig.instance().set_config(config)
    try:
        yield
    finally:
        HydraConfig.instance().cfg = saved


def check_run(config: DictConfig) -> None:
    """Check the single run of ``config`` (Hydra's, with its ``hydra`` node, before Hydra creates
    ``hydra.run.dir``) as each job of a multirun is checked: raise its first problem."""
    cfg = config.copy()
    with read_write(cfg), open_dict(cfg):
        del cfg["hydra"]
    with current_hydra_config(config):
        JobCheck()(cfg, Path(os.path.abspath(config.hydra.run.dir)))
