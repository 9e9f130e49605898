"""PNG plots of the selected runs: G-mean against IR, per-class recall, training curves.

Drawn with matplotlib's object API (``Figure`` + its Agg canvas), so importing this module never
changes the caller's pyplot backend. Every figure averages the selected run of each seed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from imbloss.report.labels import (
    dataset_label,
    ir_label,
    ir_value_label,
    is_missing,
    loss_label,
    loss_order,
    number_label,
    variant_label,
)

CURVES_FILE = Path("csv") / "metrics.csv"
MAX_NAMED_CLASSES = 20
# A sub-task: every setting key but the IR (the x axis of the G-mean plot).
SUBTASK_KEYS = (
    "dataset",
    "protocol",
    "model",
    "variant",
    "minority_fraction",
    "sampler",
    "label_noise",
)


def _training_parts(setting: pd.Series) -> list[str]:
    """The sampler and the label noise when they are not the defaults (none, 0)."""
    parts = []
    if setting["sampler"] != "none":
        parts.append(f"sampler {setting['sampler']}")
    if not is_missing(setting["label_noise"]) and setting["label_noise"] > 0:
        parts.append(f"label noise {number_label(setting['label_noise'])}")
    return parts


def _file_stem(setting: pd.Series) -> str:
    """``cifar10_binary_SimpleCNN_1_irnatural``: the setting's keys, safe for a file name."""
    parts = [setting["dataset"], setting["protocol"], setting["model"], setting["variant"]]
    if not is_missing(setting["minority_fraction"]):
        parts.append(f"f{number_label(setting['minority_fraction'])}")
    if "ir" in setting:
        parts.append(f"ir{ir_value_label(setting['ir'])}")
    parts += [part.replace(" ", "") for part in _training_parts(setting)]
    text = "_".join(str(p) for p in parts if str(p) != "")
    return re.sub(r"[^A-Za-z0-9._=-]+", "-", text)


def _describe(setting: pd.Series) -> str:
    parts = [
        dataset_label(setting["dataset"]),
        variant_label(setting["dataset"], setting["protocol"], setting["variant"]),
        setting["protocol"],
        setting["model"],
    ]
    if not is_missing(setting["minority_fraction"]):
        parts.append(f"minority fraction {number_label(setting['minority_fraction'])}")
    if "ir" in setting:
        parts.append(ir_label(setting["ir"]))
    parts += _training_parts(setting)
    return ", ".join(p for p in parts if p)


def _groups(frame: pd.DataFrame, keys: tuple[str, ...]) -> Iterator[tuple[pd.Series, pd.DataFrame]]:
    for key, group in frame.groupby(list(keys), dropna=False, sort=True):
        yield pd.Series(dict(zip(keys, key, strict=True))), group


def _losses(group: pd.DataFrame) -> list[str]:
    return sorted(group["loss"].unique(), key=loss_order)


def _save(figure: Figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return path


def plot_gmean_vs_ir(selected: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Test G-mean (%) against IR, one line per loss (mean ± std over seeds), log-scale IR.

    One figure per sub-task that was run at two IRs or more.
    """
    written = []
    for setting, group in _groups(selected, SUBTASK_KEYS):
        numeric = group[group["ir"].notna()]
        if numeric["ir"].nunique() < 2:
            continue
        figure = Figure(figsize=(6, 4))
        axes = figure.add_subplot()
        for loss in _losses(numeric):
            stats = numeric[numeric["loss"] == loss].groupby("ir")["gmean"].agg(["mean", "std"])
            axes.errorbar(
                stats.index,
                100 * stats["mean"],
                yerr=100 * stats["std"].fillna(0),
                marker="o",
                capsize=3,
                label=loss_label(loss),
            )
        axes.set_xscale("log")
        irs = sorted(numeric["ir"].unique())
        axes.minorticks_off()
        axes.set_xticks(irs, [number_label(ir) for ir in irs])
        axes.set_xlabel("imbalance ratio (IR)")
        axes.set_ylabel("test G-mean (%)")
        axes.set_title(_describe(setting), fontsize=9)
        axes.legend(fontsize=8)
        axes.grid(alpha=0.3)
        written.append(_save(figure, out_dir / f"gmean_vs_ir_{_file_stem(setting)}.png"))
    return written


def _mean_recall(runs: pd.DataFrame) -> np.ndarray | None:
    """Mean per-class recall over the runs, or None if they do not all list the same classes."""
    recalls = [np.asarray(r, dtype=float) for r in runs["per_class_recall"]]
    if not recalls or len({r.shape for r in recalls}) > 1 or recalls[0].size == 0:
        return None
    return np.mean(np.stack(recalls), axis=0)


def _class_names(names: list[str], num_classes: int) -> list[str]:
    """The run's class names for up to 20 classes, the class indices otherwise."""
    if len(names) == num_classes and num_classes <= MAX_NAMED_CLASSES:
        return [str(name) for name in names]
    return [str(c) for c in range(num_classes)]


def plot_class_recall(selected: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Per-class test recall (%), bars grouped by class, one bar per loss; minority classes '*'."""
    written = []
    for setting, group in _groups(selected, (*SUBTASK_KEYS, "ir")):
        recalls = {loss: _mean_recall(group[group["loss"] == loss]) for loss in _losses(group)}
        recalls = {loss: recall for loss, recall in recalls.items() if recall is not None}
        if not recalls or len({len(r) for r in recalls.values()}) > 1:
            continue
        num_classes = len(next(iter(recalls.values())))
        minority = set(group["minority_classes"].iloc[0])
        names = _class_names(group["class_names"].iloc[0], num_classes)
        numbered = names == [str(c) for c in range(num_classes)]
        width = 0.8 / len(recalls)
        figure = Figure(figsize=(min(30.0, max(6.0, 0.18 * num_classes * len(recalls))), 4))
        axes = figure.add_subplot()
        positions = np.arange(num_classes)
        for i, (loss, recall) in enumerate(recalls.items()):
            axes.bar(positions + i * width, 100 * recall, width, label=loss_label(loss))
        axes.set_xticks(positions + width * (len(recalls) - 1) / 2)
        axes.set_xticklabels(
            [f"{name}*" if c in minority else name for c, name in enumerate(names)],
            fontsize=7,
            rotation=0 if numbered else 45,
            ha="center" if numbered else "right",
        )
        axes.set_xlabel("class (* = minority)")
        axes.set_ylabel("test recall (%)")
        axes.set_ylim(0, 118)  # head room for the legend above the bars
        axes.set_yticks(range(0, 101, 20))
        axes.set_title(_describe(setting), fontsize=9)
        axes.legend(fontsize=8, ncols=min(7, len(recalls)), loc="upper center")
        written.append(_save(figure, out_dir / f"recall_{_file_stem(setting)}.png"))
    return written


def read_curves(run_dir: Path) -> pd.DataFrame | None:
    """Per-epoch ``train/loss``, ``val/loss``, ``val/gmean`` of one run's CSV log, or None.

    Rows of one epoch may be split over several lines; the evaluations after fitting (the
    selected checkpoint's validation and test) have no training loss and are left out.
    """
    path = run_dir / CURVES_FILE
    if not path.is_file():
        return None
    log = pd.read_csv(path)
    if "epoch" not in log or "train/loss" not in log:
        return None
    per_epoch = log.groupby("epoch").mean(numeric_only=True)
    per_epoch = per_epoch[per_epoch["train/loss"].notna()]
    columns = [c for c in ("train/loss", "val/loss", "val/gmean") if c in per_epoch]
    return per_epoch[columns]


def plot_training_curves(selected: pd.DataFrame, root: Path, out_dir: Path) -> list[Path]:
    """Training and validation loss, and validation G-mean, per epoch (mean over seeds)."""
    written = []
    for setting, group in _groups(selected, (*SUBTASK_KEYS, "ir")):
        curves = {}
        for loss in _losses(group):
            logs = [read_curves(root / d) for d in group[group["loss"] == loss]["run_dir"]]
            logs = [log for log in logs if log is not None]
            if logs:
                curves[loss] = pd.concat(logs).groupby(level=0).mean()
        if not curves:
            continue
        figure = Figure(figsize=(10, 4))
        loss_axes, gmean_axes = figure.subplots(1, 2)
        for loss, curve in curves.items():
            (line,) = loss_axes.plot(
                curve.index, curve["train/loss"], marker=".", label=loss_label(loss)
            )
            if "val/loss" in curve:
                loss_axes.plot(
                    curve.index, curve["val/loss"], "--", marker=".", color=line.get_color()
                )
            if "val/gmean" in curve:
                gmean_axes.plot(
                    curve.index, 100 * curve["val/gmean"], marker=".", label=loss_label(loss)
                )
        loss_axes.set_xlabel("epoch")
        loss_axes.set_ylabel("loss (solid: train, dashed: validation)")
        gmean_axes.set_xlabel("epoch")
        gmean_axes.set_ylabel("validation G-mean (%)")
        loss_axes.legend(fontsize=8)
        figure.suptitle(_describe(setting), fontsize=9)
        written.append(_save(figure, out_dir / f"curves_{_file_stem(setting)}.png"))
    return written


def write_plots(selected: pd.DataFrame, root: Path, out_dir: Path) -> list[Path]:
    """Every plot of the report into ``out_dir``; the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        *plot_gmean_vs_ir(selected, out_dir),
        *plot_class_recall(selected, out_dir),
        *plot_training_curves(selected, root, out_dir),
    ]
