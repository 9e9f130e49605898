"""The report's tables, shaped like the sources' (Du et al. 2021, Tables I-VI; the second source's
Table 1), plus one generic table of every cell.

A :class:`Table` holds tidy cells (key columns, ``metric``, ``mean``/``std``/``n`` and failure
counts) and says which keys run down the rows and which across the columns. :meth:`Table.grid`
lays the cells out: every row x column combination is present — a combination without a finished
run is a *missing* cell (``n = 0``), shown as a dash and never filled in — and the best mean of
each comparison (the losses competing on one column) is marked: the highest, or the lowest for an
error (``lower_better``).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from imbloss.report.cells import FRACTION, PERCENT, NumberFormat, metric_cells, time_cells
from imbloss.report.labels import (
    dataset_label,
    ir_label,
    ir_value_label,
    loss_label,
    loss_order,
    metric_label,
    number_label,
    protocol_label,
    value_order,
    variant_label,
)
from imbloss.report.runs import SETTING_COLUMNS, with_test_set

FAMILY_KEYS = ("dataset", "protocol", "model")
NUMERIC_KEYS = ("ir", "minority_fraction", "label_noise", "schedule")
# Setting axes shown as leading row groups of the source-shaped tables when they vary.
TRAINING_AXES = ("sampler", "label_noise", "precision", "schedule", "tuning")
AXIS_HEADERS = {
    "sampler": "Sampler",
    "label_noise": "Label noise",
    "precision": "Precision",
    "schedule": "Epochs",
    "tuning": "Tuning",
}
TUNING_LABELS = {"grid": "full grid", "halving": "successive halving"}
GENERIC_METRICS = ("gmean", "auc", "f1", "acc", "minority_acc", "majority_acc")
# The long-tail literature's figures (protocol exp): top-1 error, many/medium/few-shot accuracy.
SHOT_METRICS = {
    "top1_error": "Top-1 error",
    "many_shot_acc": "Many",
    "medium_shot_acc": "Medium",
    "few_shot_acc": "Few",
}
LOWER_BETTER = frozenset({"top1_error"})
SELECTION_NOTE = (
    "Test figures of the run selected on validation G-mean in each tuning (loss x setting x seed); "
    "mean over seeds ± half-width of its 95 % Student-t interval (n − 1 degrees of freedom; none "
    "for n = 1); [n=k] is the number of runs averaged, with failed/unfinished runs of the cell "
    "counted beside it; — marks a cell without a finished run."
)
# test set -> (table name suffix, title prefix, caption sentence)
TEST_SET_TABLES = {
    "test": ("", "", "Test set: the protocol's test split (the sources' tables)."),
    "full_test": (
        "_full",
        "Whole test split — ",
        "Test set: the whole official test split of the task's classes, nothing subsampled "
        "(same trained weights as the protocol's table).",
    ),
}
# (protocol, dataset, shape) -> the source table it reproduces
SOURCE_TABLES = {
    ("binary", "cifar10", "gmean_auc"): "Table II",
    ("binary", "cifar100", "gmean_auc"): "Table III",
    ("step", "fashion_mnist", "gmean_auc"): "Table IV",
    ("step", "cifar10", "gmean_auc"): "Table V",
    ("step", "fashion_mnist", "class_acc"): "Table VI",
    ("superclass_pair", "cifar100", "f1_auc"): "Second source, Table 1",
}

Labeller = Callable[[Any], str]


@dataclass
class Table:
    """One table: tidy ``cells`` and how to lay them out (see the module docstring)."""

    name: str
    title: str
    caption: str
    cells: pd.DataFrame
    row_keys: tuple[str, ...]
    col_keys: tuple[str, ...]
    headers: Mapping[str, str]
    number: NumberFormat | None  # None: a training-time table
    best_within: tuple[str, ...] = ()
    complete_rows: bool = True
    labels: Mapping[str, Labeller] = field(default_factory=dict)
    metric_names: Mapping[str, str] = field(default_factory=dict)
    lower_better: frozenset[str] = frozenset()  # metrics whose lowest mean is the best

    def label(self, key: str, value: Any) -> str:
        """How a key's value is printed (table-specific labels, else numbers or text)."""
        if key == "metric":
            return self.metric_names.get(value, metric_label(value))
        default = number_label if key in NUMERIC_KEYS else str
        return self.labels.get(key, default)(value)

    def _order(self, key: str, value: Any) -> Any:
        if key == "loss":
            return loss_order(value)
        if key == "metric":
            return (
                (list(self.metric_names).index(value), "")
                if value in self.metric_names
                else (len(self.metric_names), value)
            )
        if key == "minority_fraction":  # the second source lists 0.2, 0.1, 0.05
            kind, number, text = value_order(value)
            return (kind, -number, text)
        return value_order(value)

    def _sorted(self, frame: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
        order = sorted(
            range(len(frame)),
            key=lambda i: tuple(self._order(k, frame.iloc[i][k]) for k in keys),
        )
        return frame.iloc[order].reset_index(drop=True)

    def _row_frame(self) -> pd.DataFrame:
        keys = list(self.row_keys)
        if not self.complete_rows:
            return self._sorted(self.cells[keys].drop_duplicates(), keys)
        uniques = [self.cells[k].drop_duplicates().tolist() for k in keys]
        return self._sorted(pd.DataFrame(list(itertools.product(*uniques)), columns=keys), keys)

    def grid(self) -> pd.DataFrame:
        """Every row x column cell in display order, with ``best`` and ``status`` columns."""
        rows = self._row_frame()
        cols = self._sorted(self.cells[list(self.col_keys)].drop_duplicates(), self.col_keys)
        layout = rows.merge(cols, how="cross")
        keys = [*self.row_keys, *self.col_keys]
        grid = layout.merge(self.cells, on=keys, how="left")
        counts = [c for c in grid.columns if c in ("n", "n_failed", "n_unfinished", "tunings")]
        grid[counts] = grid[counts].fillna(0).astype(int)
        grid["best"] = self._best(grid)
        grid["status"] = [
            _status(n, failed + unfinished)
            for n, failed, unfinished in zip(
                grid["n"], grid["n_failed"], grid["n_unfinished"], strict=True
            )
        ]
        return grid

    def _best(self, grid: pd.DataFrame) -> pd.Series:
        best = pd.Series(False, index=grid.index)
        if not self.best_within or self.number is None:
            return best
        valued = grid[grid["n"] > 0]
        for _, group in valued.groupby(list(self.best_within), dropna=False):
            if len(group) < 2:
                continue
            shown = group["mean"].map(self.number)  # compare what is printed: ties are shared
            lowest = group["metric"].iloc[0] in self.lower_better
            top = group["mean"].idxmin() if lowest else group["mean"].idxmax()
            best.loc[group.index[shown == shown.loc[top]]] = True
        return best


def _status(n: int, not_ok: int) -> str:
    if n == 0:
        return "failed" if not_ok else "missing"
    return "partial" if not_ok else "ok"


def _family_suffix(runs: pd.DataFrame, dataset: str, protocol: str, model: str) -> str:
    """``_<model>`` when several models share a dataset and protocol, else nothing."""
    same = runs[(runs["dataset"] == dataset) & (runs["protocol"] == protocol)]
    return f"_{model}" if same["model"].nunique() > 1 else ""


def _family_cells(
    selected: pd.DataFrame, runs: pd.DataFrame, metrics: Sequence[str], family: Sequence[Any]
) -> pd.DataFrame:
    mask_sel = (selected[list(FAMILY_KEYS)] == list(family)).all(axis=1)
    mask_runs = (runs[list(FAMILY_KEYS)] == list(family)).all(axis=1)
    return pd.concat(
        [metric_cells(selected[mask_sel], runs[mask_runs], m) for m in metrics], ignore_index=True
    )


def _varying_axes(cells: pd.DataFrame) -> tuple[str, ...]:
    """The training axes (sampler, label noise, precision, schedule) that vary among ``cells``."""
    return tuple(axis for axis in TRAINING_AXES if cells[axis].nunique(dropna=False) > 1)


def _title(shape: str, family: Sequence[str], description: str) -> str:
    dataset, protocol, model = family
    source = SOURCE_TABLES.get((protocol, dataset, shape))
    prefix = f"{source} shape — " if source else ""
    return f"{prefix}{description}, {dataset_label(dataset)}, {protocol} protocol, model {model}"


def binary_table(selected: pd.DataFrame, runs: pd.DataFrame, family: Sequence[str]) -> Table:
    """Tables II/III: rows = losses, columns = sub-task (minority class) x {G-mean, AUC}, in %."""
    dataset, protocol, _ = family
    cells = _family_cells(selected, runs, ("gmean", "auc"), family)
    several_irs = cells["ir"].nunique(dropna=False) > 1
    axes = _varying_axes(cells)
    return Table(
        name=f"gmean_auc_{dataset}_{protocol}{_family_suffix(runs, *family)}",
        title=_title("gmean_auc", family, "G-mean and AUC (%) on binary tasks"),
        caption=f"Columns: the minority class (label 1) against all others. {SELECTION_NOTE} "
        "Best per column in bold.",
        cells=cells,
        row_keys=(*axes, "loss"),
        col_keys=("variant", "ir", "metric") if several_irs else ("variant", "metric"),
        headers={**AXIS_HEADERS, "loss": "Method"},
        number=PERCENT,
        best_within=(*axes, "variant", "ir", "metric"),
        labels={
            "loss": loss_label,
            "variant": lambda v: variant_label(dataset, protocol, v),
            "ir": ir_label,
        },
        metric_names={"gmean": "G-mean", "auc": "AUC"},
    )


def ir_table(
    selected: pd.DataFrame,
    runs: pd.DataFrame,
    family: Sequence[str],
    shape: str,
    metric_names: Mapping[str, str],
    description: str,
    note: str = "",
) -> Table:
    """Tables IV/V (G-mean, AUC) and VI (minority, majority accuracy): rows grouped by IR, in %;
    and the long-tail figures (top-1 error, many/medium/few-shot accuracy). ``note`` opens the
    caption."""
    dataset, protocol, _ = family
    cells = _family_cells(selected, runs, tuple(metric_names), family)
    axes = _varying_axes(cells)
    return Table(
        name=f"{shape}_{dataset}_{protocol}{_family_suffix(runs, *family)}",
        title=_title(shape, family, description),
        caption=f"{note}{SELECTION_NOTE} Best per IR and column in bold"
        + (" (the lowest error)." if LOWER_BETTER & set(metric_names) else "."),
        cells=cells,
        row_keys=(*axes, "ir", "loss"),
        col_keys=("metric",),
        headers={**AXIS_HEADERS, "ir": dataset_label(dataset), "loss": "Method"},
        number=PERCENT,
        best_within=(*axes, "ir", "metric"),
        labels={"loss": loss_label, "ir": ir_label},
        metric_names=metric_names,
        lower_better=LOWER_BETTER,
    )


SHOT_NOTE = (
    "Top-1 error: 100 − accuracy, where the test set is balanced (a dash on a skewed one). "
    "Many / Medium / Few: mean test recall over the classes with more than `shots.many` (100), "
    "`shots.few` (20) to `shots.many`, and fewer than `shots.few` training images of the "
    "protocol's training split (before the validation hold-out); a dash for a group without a "
    "class, and for runs made before these figures existed. "
)


def pair_table(selected: pd.DataFrame, runs: pd.DataFrame, family: Sequence[str]) -> Table:
    """The second source's Table 1: rows = pair x minority fraction, F1 and ROC-AUC per loss."""
    dataset, protocol, _ = family
    cells = _family_cells(selected, runs, ("f1_minority", "auc"), family)
    axes = _varying_axes(cells)
    return Table(
        name=f"f1_auc_{dataset}_{protocol}{_family_suffix(runs, *family)}",
        title=_title("f1_auc", family, "F1 and ROC-AUC on class pairs"),
        caption="F-1 Score is the F1 of label 1 (the minority), as the second source reports; "
        f"fractions, 4 decimals. {SELECTION_NOTE} Best loss per row and metric in bold.",
        cells=cells,
        row_keys=(*axes, "variant", "minority_fraction"),
        col_keys=("metric", "loss"),
        headers={**AXIS_HEADERS, "variant": "Dataset", "minority_fraction": "Imb. level"},
        number=FRACTION,
        best_within=(*axes, "variant", "minority_fraction", "metric"),
        labels={"loss": loss_label, "variant": lambda v: variant_label(dataset, protocol, v)},
        metric_names={"f1_minority": "F-1 Score", "auc": "ROC-AUC"},
    )


def training_time_table(runs: pd.DataFrame) -> Table:
    """Table I: whole training time including tuning, and the average one-run time, per loss;
    a full grid and a successive-halving tuning (``tuning``) in columns side by side."""
    cells = time_cells(runs, ("loss", *FAMILY_KEYS, "tuning"))
    several_models = (cells.groupby(["dataset", "protocol"])["model"].nunique() > 1).any()
    both_tunings = cells["tuning"].nunique() > 1
    return Table(
        name="training_time",
        title="Table I shape — whole training time (s) followed by the average one-run time",
        caption="Whole time: the fit times of every grid point of one tuning (one setting and "
        "seed) summed, averaged over the tunings (dataset variants, IRs, seeds); in brackets "
        "the average time of one run; [n=k] runs measured. Fit time only (no data loading or "
        "testing). Successive halving (hydra/sweeper=halving): the points its rungs stopped "
        "count with the time they trained.",
        cells=cells,
        row_keys=("loss",),
        col_keys=("protocol", "dataset", "model", "tuning"),
        headers={"loss": "Method"},
        number=None,
        labels={
            "loss": loss_label,
            "protocol": protocol_label,
            "dataset": dataset_label,
            "model": str if several_models else lambda model: "",
            "tuning": TUNING_LABELS.get if both_tunings else lambda tuning: "",
        },
    )


def generic_table(selected: pd.DataFrame, runs: pd.DataFrame) -> Table:
    """Every cell: setting x loss -> G-mean, AUC, macro F1, accuracy, minority/majority acc (%)."""
    cells = pd.concat([metric_cells(selected, runs, m) for m in GENERIC_METRICS], ignore_index=True)
    row_keys = (*SETTING_COLUMNS, "loss")
    return Table(
        name="all_cells",
        title="Every cell — test figures (%) per setting and loss",
        caption=f"{SELECTION_NOTE} Best per setting and column in bold. IR 'natural': ir: "
        "null, the protocol's own ratio (binary: every sample kept; pairs: set by the minority "
        "fraction).",
        cells=cells,
        row_keys=row_keys,
        col_keys=("metric",),
        headers={
            "dataset": "Dataset",
            "protocol": "Protocol",
            "model": "Model",
            "variant": "Sub-task",
            "minority_fraction": "Minority fraction",
            "ir": "IR",
            **AXIS_HEADERS,
            "loss": "Method",
        },
        number=PERCENT,
        best_within=(*SETTING_COLUMNS, "metric"),
        complete_rows=False,
        labels={"loss": loss_label, "dataset": dataset_label, "ir": ir_value_label},
        metric_names={m: metric_label(m) for m in GENERIC_METRICS},
    )


def figure_tables(runs: pd.DataFrame, selected: pd.DataFrame) -> list[Table]:
    """The source-shaped tables of every family present, then the generic one."""
    tables = []
    families = runs[list(FAMILY_KEYS)].drop_duplicates()
    for family in sorted(families.itertuples(index=False, name=None)):
        protocol = family[1]
        if protocol == "binary":
            tables.append(binary_table(selected, runs, family))
        elif protocol == "superclass_pair":
            tables.append(pair_table(selected, runs, family))
        else:
            tables.append(
                ir_table(
                    selected,
                    runs,
                    family,
                    "gmean_auc",
                    {"gmean": "G-mean", "auc": "AUC"},
                    "G-mean and AUC (%) per IR",
                )
            )
            if protocol in ("step", "exp"):
                tables.append(
                    ir_table(
                        selected,
                        runs,
                        family,
                        "class_acc",
                        {"minority_acc": "Minority", "majority_acc": "Majority"},
                        "average minority and majority class accuracy (%) per IR",
                    )
                )
            if protocol == "exp":
                tables.append(
                    ir_table(
                        selected,
                        runs,
                        family,
                        "shot_acc",
                        SHOT_METRICS,
                        "top-1 error and many/medium/few-shot accuracy (%) per IR",
                        note=SHOT_NOTE,
                    )
                )
    tables.append(generic_table(selected, runs))
    return tables


def build_tables(runs: pd.DataFrame, selected: pd.DataFrame) -> list[Table]:
    """Table I, then the figure tables on the protocol's test split, then on the whole one."""
    tables = [training_time_table(runs)]
    for test_set, (suffix, prefix, sentence) in TEST_SET_TABLES.items():
        views = with_test_set(runs, test_set), with_test_set(selected, test_set)
        for table in figure_tables(*views):
            tables.append(
                dataclasses.replace(
                    table,
                    name=table.name + suffix,
                    title=prefix + table.title,
                    caption=f"{sentence} {table.caption}",
                )
            )
    return tables
