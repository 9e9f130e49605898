"""Paired comparisons: each loss against a reference loss, seed by seed, on both test sets.

Two losses run with the same training seed and subsampling seed share the data split, the
initial weights and the batch order, so their G-mean difference on that replicate removes what
they share. For each setting, loss and test set, over the replicates (seed, data_seed) both
losses finished (the selected run of each tuning):

- d_r = G-mean(loss) − G-mean(reference) on replicate r;
- the mean of d_r with its 95 % Student-t interval (n − 1 degrees of freedom): an interval
  that excludes 0 is a paired t-test deciding at the 5 % level; for n = 1 there is no interval,
  and with n = 2 the t quantile (12.71) makes it too wide to decide anything;
- wins / ties / losses: replicates with d_r > 0 / = 0 / < 0.

One table per dataset, protocol and model; rows are the settings within it and the losses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from tabulate import tabulate

from imbloss.errors import ConfigError
from imbloss.intervals import t_interval
from imbloss.report.labels import (
    dataset_label,
    ir_label,
    is_missing,
    loss_label,
    loss_order,
    number_label,
    training_parts,
    value_order,
    variant_label,
    varying_run_axes,
)
from imbloss.report.runs import REPLICATE_COLUMNS, SETTING_COLUMNS, TEST_SETS, with_test_set

DEFAULT_REFERENCE = "pf"
FAMILY_KEYS = ("dataset", "protocol", "model")
ROW_KEYS = ("variant", "minority_fraction", "ir", "sampler", "label_noise", "precision", "schedule")
TEST_SET_NAMES = {"test": "protocol test split", "full_test": "whole test split"}
MIN_DECIDING_N = 3
STAT_COLUMNS = ("n", "mean", "ci_low", "ci_high", "wins", "ties", "losses")


def difference_stats(diffs: Sequence[float]) -> tuple[int, float, float, float, int, int, int]:
    """``STAT_COLUMNS`` of paired differences: n, mean, its 95 % t interval, wins/ties/losses."""
    low, high = t_interval(diffs)
    counts = (sum(d > 0 for d in diffs), sum(d == 0 for d in diffs), sum(d < 0 for d in diffs))
    return (len(diffs), sum(diffs) / len(diffs), low, high, *counts)


def paired_differences(selected: pd.DataFrame, reference: str, test_set: str) -> pd.DataFrame:
    """One row per setting and loss (reference excluded): ``STAT_COLUMNS`` of the G-mean
    differences to ``reference`` on ``test_set``, over the replicates both have."""
    view = with_test_set(selected, test_set)
    view = view[view["gmean"].notna()]
    keys = [*SETTING_COLUMNS, *REPLICATE_COLUMNS]
    ref = view.loc[view["loss"] == reference, [*keys, "gmean"]]
    others = view.loc[view["loss"] != reference, [*keys, "loss", "gmean"]]
    pairs = others.merge(ref, on=keys, suffixes=("", "_ref"))
    pairs["diff"] = pairs["gmean"] - pairs["gmean_ref"]
    rows = []
    for key, group in pairs.groupby([*SETTING_COLUMNS, "loss"], dropna=False, sort=False):
        rows.append((*key, *difference_stats(group["diff"].tolist())))
    frame = pd.DataFrame(rows, columns=[*SETTING_COLUMNS, "loss", *STAT_COLUMNS])
    frame.insert(len(SETTING_COLUMNS) + 1, "reference", reference)
    frame.insert(len(SETTING_COLUMNS) + 2, "test_set", test_set)
    return frame


def resolve_reference(selected: pd.DataFrame, reference: str | None) -> str | None:
    """The reference loss: as asked (a ConfigError if it has no finished run), or by default
    ``pf`` when it ran (None otherwise: no paired tables)."""
    present = sorted(selected["loss"].unique(), key=loss_order)
    if reference is None:
        return DEFAULT_REFERENCE if DEFAULT_REFERENCE in present else None
    if reference not in present:
        raise ConfigError(
            f"reference loss {reference!r} has no finished run here; accepted: {', '.join(present)}"
        )
    return reference


@dataclass(frozen=True)
class PairedTable:
    """The paired comparisons of one dataset, protocol and model (tidy ``frame``)."""

    name: str
    title: str
    caption: str
    frame: pd.DataFrame

    def _rows(self) -> pd.DataFrame:
        keys = [*ROW_KEYS, "loss"]
        rows = self.frame[keys].drop_duplicates()
        order = sorted(
            range(len(rows)),
            key=lambda i: (
                *(value_order(rows.iloc[i][k]) for k in ROW_KEYS),
                loss_order(rows.iloc[i]["loss"]),
            ),
        )
        return rows.iloc[order].reset_index(drop=True)

    def body(self) -> tuple[list[str], list[list[str]]]:
        """Headers and text rows: setting, method, then per test set the difference and W/T/L."""
        dataset, protocol = self.frame["dataset"].iloc[0], self.frame["protocol"].iloc[0]
        varying = varying_run_axes(self.frame)
        headers = ["Setting", "Method"]
        for test_set in TEST_SETS:
            name = TEST_SET_NAMES[test_set]
            headers += [f"Δ G-mean (pp), {name}", f"W/T/L, {name}"]
        lines = []
        for row in self._rows().itertuples(index=False):
            setting = _setting_label(dataset, protocol, row, varying)
            line = [setting, loss_label(row.loss)]
            for test_set in TEST_SETS:
                match = self.frame[
                    (self.frame["test_set"] == test_set)
                    & (self.frame["loss"] == row.loss)
                    & _same(self.frame, row)
                ]
                line += _stat_texts(match.iloc[0] if len(match) else None)
            lines.append(line)
        return headers, lines


def _same(frame: pd.DataFrame, row: Any) -> pd.Series:
    mask = pd.Series(True, index=frame.index)
    for key in ROW_KEYS:
        value = getattr(row, key)
        mask &= frame[key].isna() if is_missing(value) else frame[key] == value
    return mask


def _setting_label(dataset: str, protocol: str, row: Any, varying: tuple[str, ...]) -> str:
    parts = [variant_label(dataset, protocol, row.variant)]
    if not is_missing(row.minority_fraction):
        parts.append(f"fraction {number_label(row.minority_fraction)}")
    parts.append(ir_label(row.ir))
    parts += training_parts(row._asdict(), varying)
    return ", ".join(p for p in parts if p)


def _stat_texts(stats: pd.Series | None) -> list[str]:
    """``+1.20 [-0.40, 2.80]`` and ``2/0/1 [n=3]``; a dagger where n < 3."""
    if stats is None:
        return ["—", "—"]
    mean = f"{100 * stats['mean']:+.2f}"
    if stats["n"] >= 2:
        mean += f" [{100 * stats['ci_low']:+.2f}, {100 * stats['ci_high']:+.2f}]"
    dagger = " †" if stats["n"] < MIN_DECIDING_N else ""
    counts = f"{stats['wins']}/{stats['ties']}/{stats['losses']} [n={stats['n']}]{dagger}"
    return [mean, counts]


def paired_tables(selected: pd.DataFrame, reference: str) -> list[PairedTable]:
    """One :class:`PairedTable` per dataset, protocol and model with a loss besides the
    reference sharing a replicate with it."""
    frame = pd.concat(
        [paired_differences(selected, reference, test_set) for test_set in TEST_SETS],
        ignore_index=True,
    )
    tables = []
    for family, group in frame.groupby(list(FAMILY_KEYS), sort=True):
        dataset, protocol, model = family
        tables.append(
            PairedTable(
                name=f"paired_{reference}_{dataset}_{protocol}_{model}",
                title=f"Paired comparison with {loss_label(reference)} — G-mean, "
                f"{dataset_label(dataset)}, {protocol} protocol, model {model}",
                caption=f"Per replicate (training seed and subsampling seed) both ran: "
                f"G-mean(method) − G-mean({loss_label(reference)}) in percentage points, "
                "mean over the replicates with its 95 % Student-t interval in brackets (an "
                "interval excluding 0 decides at the 5 % level); W/T/L: replicates where the "
                "method's G-mean was higher / equal / lower. † n < 3: no interval (n = 1) or "
                "one too wide to decide anything (n = 2, t quantile 12.71).",
                frame=group.reset_index(drop=True),
            )
        )
    return tables


def paired_markdown(table: Any) -> str:
    """A table with ``title``, ``caption`` and ``body()`` (a :class:`PairedTable`, or the tuning
    noise table) as a Markdown section."""
    headers, lines = table.body()
    lines = [[text.replace("|", "\\|") for text in line] for line in lines]
    rendered = tabulate(lines, headers=headers, tablefmt="pipe", disable_numparse=True)
    return f"### {table.title}\n\n{table.caption}\n\n{rendered}\n"
