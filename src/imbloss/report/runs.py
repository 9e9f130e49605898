"""Find every run folder below a path and load it into one row of a pandas DataFrame.

A run folder is one that holds ``metrics.json`` (a finished run), ``error.json`` (a member of a
multirun that failed) or only ``.hydra/config.yaml`` (a run that never finished: still running, or
killed). Its row joins the resolved config (``.hydra/config.yaml``) with ``metrics.json``; failed
and unfinished runs keep the config columns so that the report can count them in the cells they
were meant for.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

METRICS_FILE = "metrics.json"
ERROR_FILE = "error.json"
CONFIG_FILE = Path(".hydra") / "config.yaml"

STATUS_OK = "ok"
STATUS_FAILED = "failed"
STATUS_UNFINISHED = "unfinished"

# Test-set figures of the selected checkpoint, and the validation figures used to select it.
METRIC_COLUMNS = (
    "gmean",
    "auc",
    "f1",
    "f1_minority",
    "acc",
    "minority_acc",
    "majority_acc",
    "val_gmean",
    "val_auc",
    "fit_time_s",
)
# What a run was: the table cell it belongs to (loss x setting) and its replicate (seeds). The
# training sampler and the label noise are setting axes too (runs without them: none, 0).
SETTING_COLUMNS = (
    "dataset",
    "protocol",
    "model",
    "variant",
    "minority_fraction",
    "ir",
    "sampler",
    "label_noise",
)
REPLICATE_COLUMNS = ("seed", "data_seed")
RUN_COLUMNS = (
    "run_dir",
    "status",
    "error",
    "loss",
    *SETTING_COLUMNS,
    *REPLICATE_COLUMNS,
    "hparams",
    "epochs",
    *METRIC_COLUMNS,
    "train_ir",
    "per_class_recall",
    "minority_classes",
    "class_names",
)

_SKIPPED_DIRS = frozenset({".hydra", "csv", "checkpoints", "wandb", "__pycache__"})
_INTERPOLATION = re.compile(r"^\$\{([\w.]+)\}$")
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def find_run_dirs(root: Path, exclude: Path | None = None) -> list[Path]:
    """Every run folder below ``root`` (``root`` included), sorted; ``exclude`` is skipped."""
    excluded = exclude.resolve() if exclude is not None else None
    found = []
    for current, dirs, files in os.walk(root):
        here = Path(current)
        if excluded is not None and here.resolve() == excluded:
            dirs[:] = []
            continue
        if METRICS_FILE in files or ERROR_FILE in files or (here / CONFIG_FILE).is_file():
            found.append(here)
            dirs[:] = []  # a run's own subfolders (csv, checkpoints) hold no other run
            continue
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS)
    return sorted(found)


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    with path.open() as handle:
        return json.load(handle)


def _read_config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        return {}
    with path.open() as handle:
        return yaml.load(handle, Loader=_YAML_LOADER) or {}


def config_value(config: Mapping[str, Any], dotted_key: str, default: Any = None) -> Any:
    """``config[a][b]`` for ``"a.b"``, following plain ``${x.y}`` interpolations in the file."""
    node: Any = config
    for part in dotted_key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    if isinstance(node, str) and (match := _INTERPOLATION.match(node)):
        return config_value(config, match.group(1), default)
    return node


def _number(value: Any) -> float:
    """A float, or NaN for a missing figure (None, absent)."""
    return math.nan if value is None else float(value)


def _model_name(config: Mapping[str, Any], metrics: Mapping[str, Any]) -> str:
    """The network's class name, as ``metrics.json`` records it (from ``model._target_``)."""
    if metrics.get("model"):
        return str(metrics["model"])
    target = config_value(config, "model._target_", "")
    return str(target).rsplit(".", 1)[-1]


def _loss_hparams(config: Mapping[str, Any], metrics: Mapping[str, Any]) -> str:
    """The loss's hyperparameters as canonical JSON (sorted keys, numbers as floats)."""
    if "hparams" in metrics:
        hparams = dict(metrics["hparams"])
    else:
        loss_config = config_value(config, "loss", {}) or {}
        hparams = {k: v for k, v in loss_config.items() if not k.startswith("_") and k != "name"}
    canonical = {
        k: float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
        for k, v in hparams.items()
    }
    return json.dumps(canonical, sort_keys=True)


def _variant(config: Mapping[str, Any], protocol: str) -> str:
    """The protocol's choice of sub-task: the minority class (binary) or the class pair."""
    if protocol == "binary":
        minority_class = config_value(config, "dataset.minority_class")
        return "" if minority_class is None else str(minority_class)
    if protocol == "superclass_pair":
        return str(config_value(config, "dataset.pair", "") or "")
    return ""


def _sampler(config: Mapping[str, Any], metrics: Mapping[str, Any]) -> str:
    """The sampler with its options: ``none``, ``oversample``, ``class_balanced(q=0.5)``."""
    if "sampler" in metrics:
        name, options = metrics["sampler"], dict(metrics.get("sampler_options") or {})
    else:
        name = config_value(config, "sampler.name", "none")
        keys = (config_value(config, "sampler", {}) or {}).keys() - {"name"}
        options = {k: config_value(config, f"sampler.{k}") for k in keys}
    if not options:
        return str(name)
    listed = ", ".join(
        f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(options.items())
    )
    return f"{name}({listed})"


def _training_ir(metrics: Mapping[str, Any]) -> float:
    """Largest over smallest training class count: the imbalance the run actually trained on."""
    counts = [c for c in metrics.get("train_class_counts") or [] if c]
    return max(counts) / min(counts) if counts else math.nan


def _status(metrics: Mapping[str, Any] | None, error: Mapping[str, Any] | None) -> str:
    if metrics is not None and metrics.get("status", STATUS_OK) == STATUS_OK:
        return STATUS_OK
    if error is not None or metrics is not None:
        return STATUS_FAILED
    return STATUS_UNFINISHED


def read_run(run_dir: Path, root: Path) -> dict[str, Any]:
    """One run folder as a flat record (see ``RUN_COLUMNS``)."""
    config = _read_config(run_dir)
    metrics = _read_json(run_dir / METRICS_FILE)
    error = _read_json(run_dir / ERROR_FILE)
    status = _status(metrics, error)
    metrics = metrics if status == STATUS_OK else {}
    protocol = str(metrics.get("protocol") or config_value(config, "dataset.protocol", ""))
    minority_fraction = config_value(config, "dataset.minority_fraction")
    record: dict[str, Any] = {
        "run_dir": run_dir.relative_to(root).as_posix() or ".",
        "status": status,
        "error": (error or {}).get("error", "") if status == STATUS_FAILED else "",
        "loss": str(metrics.get("loss") or config_value(config, "loss.name", "")),
        "dataset": str(metrics.get("dataset") or config_value(config, "dataset.name", "")),
        "protocol": protocol,
        "model": _model_name(config, metrics),
        "variant": _variant(config, protocol),
        "minority_fraction": _number(minority_fraction if protocol == "superclass_pair" else None),
        "ir": _number(metrics["ir"] if "ir" in metrics else config_value(config, "ir")),
        "seed": _number(metrics["seed"] if "seed" in metrics else config_value(config, "seed")),
        "sampler": _sampler(config, metrics),
        "label_noise": _number(
            metrics.get("label_noise", config_value(config, "dataset.label_noise", 0.0))
        ),
        "data_seed": _number(metrics.get("data_seed", config_value(config, "dataset.seed"))),
        "hparams": _loss_hparams(config, metrics),
        "epochs": _number(metrics.get("epochs", config_value(config, "trainer.max_epochs"))),
        "train_ir": _training_ir(metrics),
        "per_class_recall": list(metrics.get("per_class_recall") or []),
        "minority_classes": list(metrics.get("minority_classes") or []),
        "class_names": list(metrics.get("class_names") or []),
    }
    record.update({name: _number(metrics.get(name)) for name in METRIC_COLUMNS})
    return record


def _records(root: Path, exclude: Path | None) -> Iterator[dict[str, Any]]:
    for run_dir in find_run_dirs(root, exclude):
        yield read_run(run_dir, root)


def load_runs(root: Path | str, exclude: Path | None = None) -> pd.DataFrame:
    """Every run below ``root`` (ok, failed, unfinished), one row each, columns ``RUN_COLUMNS``."""
    root = Path(root)
    frame = pd.DataFrame.from_records(list(_records(root, exclude)), columns=list(RUN_COLUMNS))
    return frame.astype(
        {name: "float64" for name in (*METRIC_COLUMNS, "ir", "seed", "label_noise")}
    )
