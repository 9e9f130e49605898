"""PNG plots of the selected runs: G-mean per loss with intervals on both test sets, the
batch diagnostics, G-mean against IR, per-class recall, training curves.

Drawn with matplotlib's object API (``Figure`` + its Agg canvas), so importing this module never
changes the caller's pyplot backend. Every figure averages the selected run of each seed; interval
bars are the 95 % Student-t intervals of those means (none for one seed).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from imbloss.intervals import t_interval
from imbloss.report.labels import (
    dataset_label,
    ir_label,
    ir_value_label,
    is_missing,
    loss_label,
    loss_order,
    number_label,
    training_parts,
    variant_label,
    varying_run_axes,
)
from imbloss.report.runs import SETTING_COLUMNS
from imbloss.runs.layout import RunFolder

MAX_NAMED_CLASSES = 20
FAMILY_KEYS = ("dataset", "protocol", "model")
# A sub-task: every setting key but the IR (the x axis of the G-mean plot).
SUBTASK_KEYS = tuple(key for key in SETTING_COLUMNS if key != "ir")
# A panel of a family's G-mean plot: every setting key but the family's.
PANEL_KEYS = tuple(key for key in SETTING_COLUMNS if key not in FAMILY_KEYS)
# per test set: the runs frame's G-mean column, legend label, marker, x offset
TEST_SET_STYLES = (
    ("gmean", "protocol test split", "o", -0.12),
    ("full_gmean", "whole test split", "s", 0.12),
)


def _file_stem(setting: pd.Series, varying: tuple[str, ...] = ()) -> str:
    """``cifar10_binary_SimpleCNN_1_irnatural``: the setting's keys, safe for a file name."""
    parts = [setting["dataset"], setting["protocol"], setting["model"], setting.get("variant", "")]
    if not is_missing(setting.get("minority_fraction")):
        parts.append(f"f{number_label(setting['minority_fraction'])}")
    if "ir" in setting:
        parts.append(f"ir{ir_value_label(setting['ir'])}")
    parts += [part.replace(" ", "") for part in training_parts(setting, varying)]
    text = "_".join(str(p) for p in parts if str(p) != "")
    return re.sub(r"[^A-Za-z0-9._=-]+", "-", text)


def _describe(setting: pd.Series, varying: tuple[str, ...] = ()) -> str:
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
    parts += training_parts(setting, varying)
    return ", ".join(p for p in parts if p)


def _groups(frame: pd.DataFrame, keys: tuple[str, ...]) -> Iterator[tuple[pd.Series, pd.DataFrame]]:
    for key, group in frame.groupby(list(keys), dropna=False, sort=True):
        yield pd.Series(dict(zip(keys, key, strict=True))), group


def _losses(group: pd.DataFrame) -> list[str]:
    return sorted(group["loss"].unique(), key=loss_order)


def save_figure(figure: Figure, path: Path) -> Path:
    """Lay out ``figure`` and write it to ``path`` as every plot of the report is written."""
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return path


def _mean_and_error(values: pd.Series) -> tuple[float, float]:
    """Mean of the finite values and the half-width of its 95 % t interval (0 below 2 values)."""
    finite = values.dropna().tolist()
    low, high = t_interval(finite)
    return float(np.mean(finite)), 0.0 if np.isnan(low) else (high - low) / 2


def _panel_title(
    panel: pd.Series, dataset: str, protocol: str, varying: tuple[str, ...] = ()
) -> str:
    parts = [variant_label(dataset, protocol, panel["variant"])]
    if not is_missing(panel["minority_fraction"]):
        parts.append(f"fraction {number_label(panel['minority_fraction'])}")
    parts.append(ir_label(panel["ir"]))
    parts += training_parts(panel, varying)
    return ", ".join(p for p in parts if p)


def plot_gmean_intervals(selected: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Test G-mean (%) per loss, mean over seeds with 95 % t-interval bars, on the protocol's
    and on the whole test split; one figure per dataset, protocol and model, one panel per IR
    (and sub-task)."""
    varying = varying_run_axes(selected)
    written = []
    for family, group in _groups(selected, FAMILY_KEYS):
        panels = list(_groups(group, PANEL_KEYS))
        figure = Figure(figsize=(max(4.5, 3.2 * len(panels)), 3.8))
        axes_list = figure.subplots(1, len(panels), squeeze=False, sharey=True)[0]
        for axes, (panel, cell) in zip(axes_list, panels, strict=True):
            losses = _losses(cell)
            for column, label, marker, offset in TEST_SET_STYLES:
                stats = [_mean_and_error(cell.loc[cell["loss"] == loss, column]) for loss in losses]
                if all(np.isnan(mean) for mean, _ in stats):
                    continue
                axes.errorbar(
                    np.arange(len(losses)) + offset,
                    [100 * mean for mean, _ in stats],
                    yerr=[100 * error for _, error in stats],
                    fmt=marker,
                    capsize=3,
                    label=label if axes is axes_list[0] else None,
                )
            axes.set_xticks(range(len(losses)), [loss_label(loss) for loss in losses], fontsize=8)
            axes.set_xlim(-0.6, len(losses) - 0.4)
            axes.set_title(
                _panel_title(panel, family["dataset"], family["protocol"], varying), fontsize=9
            )
            axes.grid(alpha=0.3, axis="y")
        axes_list[0].set_ylabel("test G-mean (%), mean ± 95 % t interval")
        axes_list[0].legend(fontsize=8)
        figure.suptitle(
            f"{dataset_label(family['dataset'])}, {family['protocol']}, {family['model']}",
            fontsize=9,
        )
        written.append(save_figure(figure, out_dir / f"gmean_ci_{_file_stem(family, varying)}.png"))
    return written


def _mean_lists(values: pd.Series) -> np.ndarray | None:
    """Element-wise mean of equally long lists (None if they differ or are empty)."""
    arrays = [np.asarray(v, dtype=float) for v in values]
    if not arrays or len({a.shape for a in arrays}) > 1 or arrays[0].size == 0:
        return None
    return np.mean(np.stack(arrays), axis=0)


def _per_class_bars(
    group: pd.DataFrame, values: dict[str, np.ndarray]
) -> tuple[Figure, Axes] | None:
    """Bars grouped by class, one per loss (``values`` in [0, 1], drawn in %), minority classes
    marked '*'; None when no loss has values or their class counts differ."""
    if not values or len({len(v) for v in values.values()}) > 1:
        return None
    num_classes = len(next(iter(values.values())))
    minority = set(group["minority_classes"].iloc[0])
    names = _class_names(group["class_names"].iloc[0], num_classes)
    numbered = names == [str(c) for c in range(num_classes)]
    width = 0.8 / len(values)
    figure = Figure(figsize=(min(30.0, max(6.0, 0.18 * num_classes * len(values))), 4))
    axes = figure.add_subplot()
    positions = np.arange(num_classes)
    for i, (loss, value) in enumerate(values.items()):
        axes.bar(positions + i * width, 100 * value, width, label=loss_label(loss))
    axes.set_xticks(positions + width * (len(values) - 1) / 2)
    axes.set_xticklabels(
        [f"{name}*" if c in minority else name for c, name in enumerate(names)],
        fontsize=7,
        rotation=0 if numbered else 45,
        ha="center" if numbered else "right",
    )
    axes.set_xlabel("class (* = minority)")
    return figure, axes


def _per_loss_means(group: pd.DataFrame, column: str) -> dict[str, np.ndarray]:
    """For each loss of ``group`` whose runs' lists in ``column`` match in length, their
    element-wise mean."""
    means = {loss: _mean_lists(group.loc[group["loss"] == loss, column]) for loss in _losses(group)}
    return {loss: mean for loss, mean in means.items() if mean is not None}


def plot_batch_missing(selected: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Fraction of training batches without any sample of each class (mean over seeds), one bar
    per loss; minority classes '*'. One figure per setting whose runs recorded batch_stats."""
    varying = varying_run_axes(selected)
    written = []
    for setting, group in _groups(selected, (*SUBTASK_KEYS, "ir")):
        bars = _per_class_bars(group, _per_loss_means(group, "missing_fraction"))
        if bars is None:
            continue
        figure, axes = bars
        any_missing = 100 * group["batches_missing_any"].mean()
        axes.set_ylabel("training batches without the class (%)")
        axes.set_ylim(0, 105)
        axes.set_title(
            f"{_describe(setting, varying)}; batches missing some class: {any_missing:.1f} %",
            fontsize=9,
        )
        axes.legend(fontsize=8)
        written.append(
            save_figure(figure, out_dir / f"batches_missing_{_file_stem(setting, varying)}.png")
        )
    return written


def plot_gmean_vs_ir(selected: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Test G-mean (%) against IR, one line per loss (mean over seeds with 95 % t-interval
    bars), log-scale IR.

    One figure per sub-task that was run at two IRs or more.
    """
    varying = varying_run_axes(selected)
    written = []
    for setting, group in _groups(selected, SUBTASK_KEYS):
        numeric = group[group["ir"].notna()]
        if numeric["ir"].nunique() < 2:
            continue
        figure = Figure(figsize=(6, 4))
        axes = figure.add_subplot()
        for loss in _losses(numeric):
            per_ir = numeric[numeric["loss"] == loss].groupby("ir")["gmean"]
            irs = sorted(per_ir.groups)
            stats = [_mean_and_error(per_ir.get_group(ir)) for ir in irs]
            axes.errorbar(
                irs,
                [100 * mean for mean, _ in stats],
                yerr=[100 * error for _, error in stats],
                marker="o",
                capsize=3,
                label=loss_label(loss),
            )
        axes.set_xscale("log")
        irs = sorted(numeric["ir"].unique())
        axes.minorticks_off()
        axes.set_xticks(irs, [number_label(ir) for ir in irs])
        axes.set_xlabel("imbalance ratio (IR)")
        axes.set_ylabel("test G-mean (%), mean ± 95 % t interval")
        axes.set_title(_describe(setting, varying), fontsize=9)
        axes.legend(fontsize=8)
        axes.grid(alpha=0.3)
        written.append(
            save_figure(figure, out_dir / f"gmean_vs_ir_{_file_stem(setting, varying)}.png")
        )
    return written


def _class_names(names: list[str], num_classes: int) -> list[str]:
    """The run's class names for up to 20 classes, the class indices otherwise."""
    if len(names) == num_classes and num_classes <= MAX_NAMED_CLASSES:
        return [str(name) for name in names]
    return [str(c) for c in range(num_classes)]


def plot_class_recall(selected: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Per-class test recall (%), bars grouped by class, one bar per loss; minority classes '*'."""
    varying = varying_run_axes(selected)
    written = []
    for setting, group in _groups(selected, (*SUBTASK_KEYS, "ir")):
        recalls = _per_loss_means(group, "per_class_recall")
        bars = _per_class_bars(group, recalls)
        if bars is None:
            continue
        figure, axes = bars
        axes.set_ylabel("test recall (%)")
        axes.set_ylim(0, 118)  # head room for the legend above the bars
        axes.set_yticks(range(0, 101, 20))
        axes.set_title(_describe(setting, varying), fontsize=9)
        axes.legend(fontsize=8, ncols=min(7, len(recalls)), loc="upper center")
        written.append(save_figure(figure, out_dir / f"recall_{_file_stem(setting, varying)}.png"))
    return written


def read_curves(run_dir: Path) -> pd.DataFrame | None:
    """Per-epoch ``train/loss``, ``val/loss``, ``val/gmean`` of one run's CSV log, or None.

    Rows of one epoch may be split over several lines; the evaluations after fitting (the
    selected checkpoint's validation and test) have no training loss and are left out.
    """
    path = RunFolder(run_dir).curves
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
    varying = varying_run_axes(selected)
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
        figure.suptitle(_describe(setting, varying), fontsize=9)
        written.append(save_figure(figure, out_dir / f"curves_{_file_stem(setting, varying)}.png"))
    return written


def write_plots(selected: pd.DataFrame, root: Path, out_dir: Path) -> list[Path]:
    """Every plot of the report into ``out_dir``; the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        *plot_gmean_intervals(selected, out_dir),
        *plot_batch_missing(selected, out_dir),
        *plot_gmean_vs_ir(selected, out_dir),
        *plot_class_recall(selected, out_dir),
        *plot_training_curves(selected, root, out_dir),
    ]
