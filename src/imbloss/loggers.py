"""Experiment loggers: CSV always, W&B on request — offline unless an API key is configured."""

from __future__ import annotations

import netrc
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger, WandbLogger
from omegaconf import DictConfig

WANDB_HOST = "api.wandb.ai"


def wandb_api_key_configured(environ: Mapping[str, str] | None = None) -> bool:
    """True if W&B can authenticate: ``WANDB_API_KEY``, or the netrc entry of ``wandb login``."""
    environ = os.environ if environ is None else environ
    if environ.get("WANDB_API_KEY"):
        return True
    netrc_path = Path(environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return netrc.netrc(netrc_path).authenticators(WANDB_HOST) is not None
    except (FileNotFoundError, netrc.NetrcParseError, PermissionError):
        return False


def wandb_offline(requested: bool | None, environ: Mapping[str, str] | None = None) -> bool:
    """Offline when asked, when ``WANDB_MODE`` says so, or when no API key is configured."""
    environ = os.environ if environ is None else environ
    if requested is not None:
        return requested
    if environ.get("WANDB_MODE") in ("offline", "dryrun", "disabled"):
        return True
    return not wandb_api_key_configured(environ)


def wandb_run_id(path: Path) -> str:
    """The W&B run id kept in ``path`` (a run folder's ``wandb/run_id``), made on first use: a
    resumed run, or a resumed member of a stack, continues the W&B run it began."""
    if path.is_file():
        return path.read_text().strip()
    run_id = uuid.uuid4().hex[:12]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(run_id + "\n")
    return run_id


def build_loggers(
    logger_cfg: DictConfig | None,
    run_name: str,
    group: str | None,
    tags: list[str],
    wandb_id_file: Path | None = None,
) -> list[Logger]:
    """Instantiate every configured logger; W&B gets the run's name, sweep group and tags, and
    with ``wandb_id_file`` the run id kept there (``resume="allow"``: the same W&B run, online
    or, once synced, offline)."""
    loggers: list[Logger] = []
    for name, cfg in (logger_cfg or {}).items():
        extra: dict[str, Any] = {}
        if cfg.get("_target_", "").endswith("WandbLogger"):
            if wandb_id_file is not None:
                extra = {"id": wandb_run_id(wandb_id_file), "resume": "allow"}
            extra |= {
                "offline": wandb_offline(cfg.get("offline")),
                "name": run_name,
                "group": group,
                "tags": tags,
                "settings": {"init_timeout": 60, "silent": True},
                # a run of its own even while others are active (the members of a stack)
                "reinit": "create_new",
            }
        logger = instantiate(cfg, **extra)
        if logger is None:
            raise ValueError(f"logger {name!r} instantiated to nothing")
        loggers.append(logger)
    return loggers


def finish_wandb(loggers: list[Logger], exit_code: int) -> str | None:
    """End the W&B run (one per member of a sweep, marked failed by a non-zero ``exit_code``);
    for an offline run, say how to upload it."""
    message = None
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            experiment = logger.experiment
            if experiment.offline:
                run_dir = Path(experiment.dir).parent
                message = (
                    f"W&B run saved offline in {run_dir}; upload it with: wandb sync {run_dir}"
                )
            experiment.finish(exit_code=exit_code)
    return message
