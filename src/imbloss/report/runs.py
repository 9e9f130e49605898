"""Find every run folder below a path and load it into one row of a pandas DataFrame.

A run folder (:class:`imbloss.runs.layout.RunFolder`) is one that holds ``metrics.json`` (a finished
run), ``error.json`` (a member of a multirun that failed) or only ``.hydra/config.yaml`` (a run
that never finished: still running, or killed). Its row joins the resolved config with
``metrics.json``; failed and unfinished runs keep the config columns so that the report can count
them in the cells they were meant for.

``figures`` picks the weights whose figures fill the row (``FIGURES``): ``selected`` (the
checkpoint chosen on validation G-mean: the top level of ``metrics.json``) or ``last`` (the weights
after the final epoch: its ``last`` section, validation figures included, so that a tuning's grid
point is then chosen on the last epoch's validation G-mean). The protocol test split's figures go
to ``METRIC_COLUMNS``, the whole test split's to the same names prefixed ``full_``
(:func:`with_test_set` swaps them in). ``auc_hard`` (the AUC of the predicted labels,
:func:`imbloss.metrics.hard_prediction_auc`) is not in ``metrics.json``: the loader computes it
from the run's ``predictions.npz`` (NaN without one). A figure a run's ``metrics.json`` lacks (the
shot accuracies and top-1 error of runs made before them) is NaN. ``published`` lists the papers'
figures the run's preset sets it beside (``experiment.published`` of its configuration).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from imbloss.errors import ConfigError, RunFileError
from imbloss.metrics import SHOT_FIGURES, hard_prediction_auc
from imbloss.multirun.halving import RECORD_FILE as HALVING_RECORD
from imbloss.runs.folder import KEYS_ADDED_LATER
from imbloss.runs.layout import PREDICTION_KEYS, RUN_SUBFOLDERS, RunFolder
from imbloss.runs.readers import read_json_file, read_predictions

STATUS_OK = "ok"
STATUS_FAILED = "failed"
STATUS_UNFINISHED = "unfinished"
# A run a halving rung stopped before its schedule's end (``stopped_at_epoch``): it counts in the
# cost of its tuning, never in a cell.
STATUS_STOPPED = "stopped"

FIGURES = ("selected", "last")
TEST_SETS = ("test", "full_test")
FULL_PREFIX = "full_"
# Test-set figures (of the protocol's test split; the whole split's carry FULL_PREFIX).
# ``auc_hard`` is computed from ``predictions.npz``, the others are read from ``metrics.json``.
HARD_AUC = "auc_hard"
RECORDED_FIGURES = (
    "gmean",
    "auc",
    "f1",
    "f1_minority",
    "acc",
    "minority_acc",
    "majority_acc",
    *SHOT_FIGURES,  # many/medium/few-shot accuracy, and the top-1 error on a balanced test set:
    "top1_error",  # NaN for runs made before them (and for an empty group, or a skewed test set)
)
TEST_FIGURES = (*RECORDED_FIGURES, HARD_AUC)
FULL_COLUMNS = tuple(FULL_PREFIX + name for name in (*TEST_FIGURES, "per_class_recall"))
# The test figures, the validation figures the selection uses, and the fit time.
METRIC_COLUMNS = (*TEST_FIGURES, "val_gmean", "val_auc", "fit_time_s")
# What a run was: the table cell it belongs to (loss x setting) and its replicate (seeds). The
# training sampler, the label noise, the numeric precision, the schedule (trainer.max_epochs) and
# the tuning method (``grid``, or ``halving``: a run of a hydra/sweeper=halving sweep, whose
# folder holds halving.json) are setting axes too (runs without them: none, 0, 32-true, 60,
# grid).
SETTING_COLUMNS = (
    "dataset",
    "protocol",
    "model",
    "variant",
    "minority_fraction",
    "ir",
    "sampler",
    "label_noise",
    "precision",
    "schedule",
    "tuning",
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
    "selected_epoch",
    *METRIC_COLUMNS,
    *FULL_COLUMNS,
    "full_gmean_low",
    "full_gmean_high",
    "train_ir",
    "per_class_recall",
    "minority_classes",
    "class_names",
    "missing_fraction",
    "batches_missing_any",
    "published",
)
LIST_COLUMNS = (
    "per_class_recall",
    f"{FULL_PREFIX}per_class_recall",
    "minority_classes",
    "class_names",
    "missing_fraction",
    "published",
)

# Loss hyperparameters added after runs were made, with the value those runs had in effect.
LOSS_KEYS_ADDED_LATER = {
    dotted.removeprefix("loss."): value
    for dotted, value in KEYS_ADDED_LATER.items()
    if dotted.startswith("loss.")
}
_ABSENT = object()
_SKIPPED_DIRS = RUN_SUBFOLDERS | {"__pycache__"}
_INTERPOLATION = re.compile(r"^\$\{([\w.]+)\}$")
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def find_run_dirs(root: Path, exclude: Path | None = None) -> list[Path]:
    """Every run folder below ``root`` (``root`` included), sorted; ``exclude`` is skipped."""
    excluded = exclude.resolve() if exclude is not None else None
    found = []
    for current, dirs, _files in os.walk(root):
        here = Path(current)
        if excluded is not None and here.resolve() == excluded:
            dirs[:] = []
            continue
        if RunFolder(here).is_run():
            found.append(here)
            dirs[:] = []  # a run's own subfolders (csv, checkpoints) hold no other run
            continue
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS)
    return sorted(found)


def _read_json(path: Path) -> dict[str, Any] | None:
    return read_json_file(path) if path.is_file() else None


def _read_config(run_dir: Path) -> dict[str, Any]:
    path = RunFolder(run_dir).config
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
    """The loss's hyperparameters as canonical JSON (sorted keys, numbers as floats; one added
    after runs were made left out where it holds their value, ``LOSS_KEYS_ADDED_LATER``)."""
    if "hparams" in metrics:
        hparams = dict(metrics["hparams"])
    else:
        loss_config = config_value(config, "loss", {}) or {}
        hparams = {k: v for k, v in loss_config.items() if not k.startswith("_") and k != "name"}
    canonical = {
        k: float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
        for k, v in hparams.items()
        if LOSS_KEYS_ADDED_LATER.get(k, _ABSENT) != v  # as a run made before the key reads
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
        return STATUS_OK if metrics.get("stopped_at_epoch") is None else STATUS_STOPPED
    if error is not None or metrics is not None:
        return STATUS_FAILED
    return STATUS_UNFINISHED


def _figure_source(metrics: Mapping[str, Any], figures: str) -> Mapping[str, Any]:
    """The section of ``metrics.json`` holding the chosen weights' figures ({} if absent)."""
    return metrics if figures == "selected" else metrics.get("last") or {}


def _hard_aucs(predictions: Mapping[str, np.ndarray] | None, figures: str) -> dict[str, float]:
    """``auc_hard`` and ``full_auc_hard`` of the ``figures`` weights (NaN without predictions)."""
    found = {}
    for test_set, prefix in (("test", ""), ("full_test", FULL_PREFIX)):
        keys = PREDICTION_KEYS[(figures, test_set)]
        if predictions is None or not all(key in predictions for key in keys):
            found[prefix + HARD_AUC] = math.nan
            continue
        target, probs = (predictions[key] for key in keys)
        found[prefix + HARD_AUC] = hard_prediction_auc(probs, target)
    return found


def read_run(run_dir: Path, root: Path, figures: str = "selected") -> dict[str, Any]:
    """One run folder as a flat record (see ``RUN_COLUMNS``)."""
    config = _read_config(run_dir)
    folder = RunFolder(run_dir)
    predictions = None
    try:
        metrics = _read_json(folder.metrics)
        error = _read_json(folder.error)
        if folder.predictions.is_file():
            predictions = read_predictions(folder.predictions)
    except RunFileError as bad_file:  # counted as failed, with the reason
        metrics, error = None, {"error": str(bad_file)}
    status = _status(metrics, error)
    metrics = metrics if status in (STATUS_OK, STATUS_STOPPED) else {}
    source = _figure_source(metrics, figures)
    full = source.get("full_test") or {}
    stats = metrics.get("batch_stats") or {}
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
        "precision": str(metrics.get("precision") or config_value(config, "trainer.precision")),
        "schedule": _number(config_value(config, "trainer.max_epochs")),
        "tuning": "halving" if (run_dir.parent / HALVING_RECORD).is_file() else "grid",
        "data_seed": _number(metrics.get("data_seed", config_value(config, "dataset.seed"))),
        "hparams": _loss_hparams(config, metrics),
        "epochs": _number(metrics.get("epochs", config_value(config, "trainer.max_epochs"))),
        "selected_epoch": _number(metrics.get("selected_epoch")),
        "train_ir": _training_ir(metrics),
        "per_class_recall": list(source.get("per_class_recall") or []),
        f"{FULL_PREFIX}per_class_recall": list(full.get("per_class_recall") or []),
        "minority_classes": list(metrics.get("minority_classes") or []),
        "class_names": list(metrics.get("class_names") or []),
        "missing_fraction": list(stats.get("missing_fraction") or []),
        "batches_missing_any": _number(stats.get("batches_missing_any")),
        # the papers' figures its preset sets it beside (experiment.published; [] for none)
        "published": list(config_value(config, "experiment.published") or []),
    }
    record.update({name: _number(source.get(name)) for name in (*RECORDED_FIGURES, "val_gmean")})
    record["val_auc"] = _number(source.get("val_auc"))
    record["fit_time_s"] = _number(metrics.get("fit_time_s"))
    record.update({FULL_PREFIX + name: _number(full.get(name)) for name in RECORDED_FIGURES})
    ok = status in (STATUS_OK, STATUS_STOPPED)
    record.update(_hard_aucs(predictions if ok else None, figures))
    low, high = full.get("gmean_ci95") or (None, None)
    record.update(full_gmean_low=_number(low), full_gmean_high=_number(high))
    return record


def _records(root: Path, exclude: Path | None, figures: str) -> Iterator[dict[str, Any]]:
    for run_dir in find_run_dirs(root, exclude):
        yield read_run(run_dir, root, figures)


def check_figures(figures: str) -> None:
    """ConfigError naming the accepted choices unless ``figures`` is one of ``FIGURES``."""
    if figures not in FIGURES:
        raise ConfigError(f"unknown figures {figures!r}; accepted: {', '.join(FIGURES)}")


def load_runs(
    root: Path | str, exclude: Path | None = None, figures: str = "selected"
) -> pd.DataFrame:
    """Every run below ``root`` (ok, failed, unfinished), one row each, columns ``RUN_COLUMNS``;
    the figures of the ``figures`` weights (``selected`` or ``last``)."""
    check_figures(figures)
    root = Path(root)
    records = list(_records(root, exclude, figures))
    frame = pd.DataFrame.from_records(records, columns=list(RUN_COLUMNS))
    numeric = (
        *METRIC_COLUMNS,
        *FULL_COLUMNS[:-1],
        "full_gmean_low",
        "full_gmean_high",
        "ir",
        "seed",
        "selected_epoch",
        "label_noise",
        "schedule",
    )
    return frame.astype({name: "float64" for name in numeric})


def with_test_set(frame: pd.DataFrame, test_set: str) -> pd.DataFrame:
    """``frame`` with the figures of ``test_set`` in the plain columns (``gmean``, ...): itself
    for the protocol's ``test``, the ``full_`` columns swapped in for ``full_test``."""
    if test_set == "test":
        return frame
    names = (*TEST_FIGURES, "per_class_recall")
    return frame.assign(**{name: frame[FULL_PREFIX + name] for name in names})
