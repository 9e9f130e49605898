"""Which jobs of a multirun may be trained as one stack.

Two jobs share a group when their composed configurations are equal after removing what may
differ between the members of a stack: ``loss`` (any loss with its hyperparameters), ``seed`` (the
training seed) and the per-job bookkeeping — the ``hydra`` node, the job's output folder (every
path derived from ``hydra.runtime.output_dir``) and ``tags``. The comparison is on the resolved
configuration, so any key added later (a new config group, a dataset option) separates groups
without a change here.

A group is stacked only if the stacked engine supports its training settings
(:func:`stacking_obstacle`); otherwise its jobs run one by one as with the basic launcher.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

MEMBER_KEYS = ("loss", "seed", "tags")
# How the stacked forward pass runs (imbloss.stacked.network): auto = vmap on a GPU, loop on CPU.
FORWARD_MODES = ("auto", "vmap", "loop")
JOB_DIR_PLACEHOLDER = "<job output dir>"
# Trainer keys the stacked engine honours (it is not a Lightning Trainer); others stop stacking.
STACKED_TRAINER_KEYS = {
    "_target_",
    "max_epochs",
    "strategy",
    "accelerator",
    "devices",
    "precision",
    "deterministic",
    "log_every_n_steps",
    "num_sanity_val_steps",
    "enable_model_summary",
    "enable_progress_bar",
    "default_root_dir",
    "limit_train_batches",
}
# Numeric precisions the stacked engine trains in, as Lightning names them: float32, or the
# forward passes under bf16 autocast with the losses in float32 (as the single engine).
STACKED_PRECISIONS = ("32-true", "32", 32, "bf16-mixed")
# Optimisers that act element by element: one over stacked tensors equals K separate ones.
ELEMENTWISE_OPTIMIZERS = ("torch.optim.Adam", "torch.optim.AdamW", "torch.optim.SGD")


def group_key(config: DictConfig) -> str:
    """The resolved job configuration without the member keys and bookkeeping, as JSON text.

    ``config`` is a composed sweep configuration (with its ``hydra`` node)."""
    job = copy.deepcopy(config)
    with read_write(job.hydra.runtime), open_dict(job.hydra.runtime):
        job.hydra.runtime.output_dir = JOB_DIR_PLACEHOLDER
    saved = HydraConfig.instance().cfg
    HydraConfig.instance().set_config(job)  # ${hydra:...} resolves against this job
    try:
        task = copy.deepcopy(job)
        with read_write(task), read_write(task.hydra), open_dict(task):
            del task["hydra"]
        resolved: dict[str, Any] = OmegaConf.to_container(task, resolve=True)  # type: ignore
    finally:
        HydraConfig.instance().cfg = saved
    for key in MEMBER_KEYS:
        resolved.pop(key, None)
    return json.dumps(resolved, sort_keys=True, default=str)


def group_jobs(keys: Sequence[str | None]) -> list[list[int]]:
    """Positions of equal keys, groups in order of first appearance; ``None`` (a configuration
    that could not be resolved) is a group of its own."""
    groups: dict[str, list[int]] = {}
    alone: list[list[int]] = []
    order: list[list[int]] = []
    for position, key in enumerate(keys):
        if key is None:
            alone.append([position])
            order.append(alone[-1])
        elif key in groups:
            groups[key].append(position)
        else:
            groups[key] = [position]
            order.append(groups[key])
    return order


def stacking_obstacle(cfg: DictConfig) -> str | None:
    """Why the stacked engine cannot train this job configuration, or None if it can."""
    trainer = cfg.trainer
    extra = sorted(set(trainer.keys()) - STACKED_TRAINER_KEYS)
    if extra:
        return f"trainer.{extra[0]} is not supported by the stacked engine"
    if trainer.get("devices", 1) not in (1, "1", "auto"):
        return f"trainer.devices={trainer.devices}: the stacked engine uses one device"
    if trainer.get("strategy", "auto") != "auto":
        return f"trainer.strategy={trainer.strategy}: the stacked engine uses one device"
    if trainer.get("precision", "32-true") not in STACKED_PRECISIONS:
        return (
            f"trainer.precision={trainer.precision}: the stacked engine trains in 32-true or "
            "bf16-mixed"
        )
    if cfg.optimizer._target_ not in ELEMENTWISE_OPTIMIZERS:
        return f"optimizer {cfg.optimizer._target_} is not one of {ELEMENTWISE_OPTIMIZERS}"
    callbacks = list(cfg.callbacks.values())
    monitored = [c for c in callbacks if c.get("monitor") is not None]
    unmonitored = [c for c in callbacks if c.get("monitor") is None]
    best = monitored[0] if len(monitored) == 1 else None
    if best is None or not (
        all(c._target_.endswith("ModelCheckpoint") for c in callbacks)
        and best.get("monitor") == "val/gmean"
        and best.get("mode") == "max"
        and best.get("save_top_k") == 1
        and not best.get("save_last")
        and len(unmonitored) <= 1
    ):
        return (
            "the stacked engine needs the default checkpoint callbacks (best val/gmean, and "
            "optionally the last epoch's)"
        )
    return None
