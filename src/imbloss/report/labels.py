"""How the report names and orders losses, datasets, protocols, sub-tasks and IRs.

A loss's label and row position come from its registry entry (``register_loss(label=...,
order=...)``); a loss the registry does not know (e.g. from another installation) keeps its name
and goes after the registered ones.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from imbloss.errors import ConfigError
from imbloss.losses import LossSpec, loss_spec

DATASET_LABELS = {
    "fashion_mnist": "Fashion MNIST",
    "cifar10": "CIFAR-10",
    "cifar100": "CIFAR-100",
    "synthetic": "Synthetic",
}
PROTOCOL_LABELS = {
    "binary": "Binary",
    "step": "Multi-class (step)",
    "exp": "Long-tailed (exp)",
    "superclass_pair": "Superclass pair",
    "none": "Balanced",
}
PAIR_LABELS = {"household": "Household", "tree_1": "Tree 1", "tree_2": "Tree 2"}
METRIC_LABELS = {
    "gmean": "G-mean",
    "auc": "AUC",
    "f1": "F1 (macro)",
    "f1_minority": "F-1 Score",
    "acc": "Accuracy",
    "minority_acc": "Minority",
    "majority_acc": "Majority",
    "many_shot_acc": "Many-shot",
    "medium_shot_acc": "Medium-shot",
    "few_shot_acc": "Few-shot",
    "top1_error": "Top-1 error",
    "fit_time_s": "Time (s)",
}


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _registered(name: str) -> LossSpec | None:
    try:
        return loss_spec(name)
    except ConfigError:
        return None


def loss_label(name: str) -> str:
    spec = _registered(name)
    return spec.label if spec is not None else name


def dataset_label(name: str) -> str:
    return DATASET_LABELS.get(name, name)


def protocol_label(name: str) -> str:
    return PROTOCOL_LABELS.get(name, name)


def metric_label(name: str) -> str:
    return METRIC_LABELS.get(name, name)


def number_label(value: Any) -> str:
    """``10`` for 10.0, ``0.05`` for 0.05, empty for a missing value."""
    return "" if is_missing(value) else f"{float(value):g}"


def ir_value_label(value: Any) -> str:
    """``10`` for IR 10; ``natural`` for ir: null (the protocol's own ratio)."""
    return "natural" if is_missing(value) else f"{float(value):g}"


def ir_label(value: Any) -> str:
    """``IR=10``; a missing IR is the protocol's natural ratio (e.g. binary with ir: null)."""
    return f"IR={ir_value_label(value)}"


def variant_label(dataset: str, protocol: str, variant: str) -> str:
    """``CIFAR-10-1``: binary, minority class 1 (the first source's names); ``Tree 1``: a pair."""
    if protocol == "binary" and variant:
        return f"{dataset_label(dataset)}-{variant}"
    if protocol == "superclass_pair":
        return PAIR_LABELS.get(variant, variant)
    return variant


def loss_order(name: str) -> tuple[float, str]:
    """Sort key: the registry's order (the sources' rows first), unknown losses after, by name."""
    spec = _registered(name)
    return (spec.order, "") if spec is not None else (math.inf, name)


def value_order(value: Any) -> tuple[int, float, str]:
    """Sort key for a mixed column: missing first, then numbers by value, then text."""
    if is_missing(value) or value == "":
        return (0, 0.0, "")
    try:
        return (1, float(value), "")
    except (TypeError, ValueError):
        return (2, 0.0, str(value))


# Setting axes named in a label only where the runs at hand differ in them.
RUN_AXES = ("precision", "schedule", "tuning")


def varying_run_axes(frame: Any) -> tuple[str, ...]:
    """The ``RUN_AXES`` with more than one value in ``frame`` (a DataFrame of runs or cells)."""
    return tuple(k for k in RUN_AXES if k in frame and frame[k].nunique(dropna=False) > 1)


def training_parts(setting: Mapping[str, Any], varying: tuple[str, ...] = ()) -> list[str]:
    """``["sampler oversample", "label noise 0.2", "bf16-mixed", "200 epochs"]``: the sampler and
    the label noise where they are not the defaults (none, 0; a missing value counts as the
    default), and the precision, schedule and tuning method where ``varying`` names them and
    ``setting`` has them."""
    sampler, label_noise = setting.get("sampler"), setting.get("label_noise")
    parts = []
    if not is_missing(sampler) and sampler not in ("", "none"):
        parts.append(f"sampler {sampler}")
    if not is_missing(label_noise) and label_noise > 0:
        parts.append(f"label noise {number_label(label_noise)}")
    precision, schedule = setting.get("precision"), setting.get("schedule")
    if "precision" in varying and not is_missing(precision):
        parts.append(str(precision))
    if "schedule" in varying and not is_missing(schedule):
        parts.append(f"{number_label(schedule)} epochs")
    tuning = setting.get("tuning")
    if "tuning" in varying and not is_missing(tuning):
        parts.append("successive halving" if tuning == "halving" else "full grid")
    return parts
