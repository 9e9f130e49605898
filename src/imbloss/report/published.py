"""Our cells beside the papers' own figures: ``published_<dataset>_<protocol>``.

A preset that reproduces a paper's setting lists that paper's figures in its configuration
(``experiment.published``: one record per cell, ``{source, row, loss, ir, top1_error}``, the
top-1 error in % on the balanced test split; ``conf/experiment/cifar10_lt_sgd.yaml``). Every run of
the preset carries them (the report's ``published`` column). For each record this table puts the
matching cell of those runs — same family (dataset, protocol, model), loss and IR, any other
setting axis in a row of its own — beside the published figure: our top-1 error (mean over seeds ±
half the 95 % t interval, ``[n=k]``), the difference in percentage points, and our many/medium/
few-shot accuracy. A record without a finished run is a dash, never a number. Only the runs that
carry the record count: runs of another recipe with the same dataset and model stay out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from imbloss.metrics import SHOT_FIGURES
from imbloss.report.cells import PERCENT, count_note, metric_cells
from imbloss.report.labels import dataset_label, is_missing, loss_label, loss_order
from imbloss.report.runs import SETTING_COLUMNS
from imbloss.report.selection import CELL_KEYS

FAMILY = ("dataset", "protocol", "model")
METRICS = ("top1_error", *SHOT_FIGURES)
RECORD_KEYS = ("source", "row", "loss", "ir", "top1_error")
COUNTS = ("n", "n_failed", "n_unfinished")


def _record_key(record: Mapping[str, Any]) -> str:
    return json.dumps(dict(record), sort_keys=True, default=str)


def _records(runs: pd.DataFrame) -> list[dict[str, Any]]:
    """The distinct published records the runs carry, by IR, then the losses' table order."""
    found: dict[str, dict[str, Any]] = {}
    for items in runs["published"]:
        for record in items:
            found.setdefault(_record_key(record), dict(record))
    return sorted(found.values(), key=lambda r: (float(r["ir"]), loss_order(r["loss"])))


def _cells(selected: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per cell (CELL_KEYS) of ``runs``: each metric's mean and interval, the counts."""
    frames = []
    for metric in METRICS:
        cells = metric_cells(selected, runs, metric).set_index(list(CELL_KEYS))
        columns = {"mean": metric, "ci_low": f"{metric}_low", "ci_high": f"{metric}_high"}
        frames.append(cells[list(columns)].rename(columns=columns))
    counts = metric_cells(selected, runs, "top1_error").set_index(list(CELL_KEYS))[list(COUNTS)]
    return pd.concat([*frames, counts], axis=1).reset_index()


def published_frame(
    runs: pd.DataFrame, selected: pd.DataFrame, family: Sequence[Any]
) -> pd.DataFrame:
    """Tidy rows of one family: the record's keys (``published`` its top-1 error, in %), the
    cell's setting, each metric's mean and interval bounds (fractions), the counts and the
    difference ``diff_pp`` = ours − published in percentage points (NaN without a finished run)."""
    in_family = (runs[list(FAMILY)] == list(family)).all(axis=1)
    carrying = runs[in_family & runs["published"].map(bool)]
    rows = []
    for record in _records(carrying):
        holds = carrying["published"].map(lambda items, r=record: r in items)
        holders = carrying[holds]
        matching = holders[
            (holders["loss"] == record["loss"]) & (holders["ir"] == float(record["ir"]))
        ]
        chosen = selected[selected["run_dir"].isin(matching["run_dir"])]
        cells = _cells(chosen, matching) if len(matching) else pd.DataFrame()
        base = {name: record.get(name) for name in RECORD_KEYS}
        base["published"] = float(base.pop("top1_error"))
        if cells.empty:
            rows.append({**base, **dict(zip(FAMILY, family, strict=True)), "n": 0})
            continue
        for cell in cells.to_dict("records"):
            rows.append({**cell, **base})
    frame = pd.DataFrame(rows)
    for name in COUNTS:
        frame[name] = frame[name].fillna(0).astype(int) if name in frame else 0
    for name in (f"{m}{end}" for m in METRICS for end in ("", "_low", "_high")):
        if name not in frame:
            frame[name] = math.nan
    frame["diff_pp"] = 100 * frame["top1_error"] - frame["published"]
    return frame


def _figure(mean: float, low: float, high: float, row: Any) -> str:
    """``22.50 ± 0.40 [n=3]`` (percent), ``— [n=0]`` without a finished run."""
    note = count_note(row.n, row.n_failed, row.n_unfinished)
    if row.n == 0 or is_missing(mean):
        return f"— {note}"
    half = (high - low) / 2
    spread = f" ± {PERCENT(half)}" if row.n > 1 and not is_missing(half) else ""
    return f"{PERCENT(mean)}{spread} {note}"


@dataclass(frozen=True)
class PublishedTable:
    """One family's cells beside the published figures (tidy ``frame``), rendered like the
    paired tables."""

    frame: pd.DataFrame
    name: str
    title: str
    caption: str = (
        "Each published figure (the paper's top-1 error on the balanced test split, %) beside "
        "the cell of the runs of the preset that lists it (same loss and IR): our top-1 error, "
        "mean over seeds ± half-width of its 95 % Student-t interval [n=k runs]; ours − "
        "published in percentage points; our many-, medium- and few-shot accuracy (mean recall "
        "over the classes with > 100, 20–100 and < 20 training images; — for a group without a "
        "class). Test figures of the run selected on validation G-mean in each tuning."
    )

    def body(self) -> tuple[list[str], list[list[str]]]:
        headers = ["Method", "IR", "Published", "Ours", "Ours − published (pp)", "Many", "Medium",
                   "Few", "Source"]  # fmt: skip
        measured = self.frame[self.frame["n"] > 0]
        settings = [c for c in SETTING_COLUMNS if c not in (*FAMILY, "ir") and c in measured]
        varying = [c for c in settings if measured[c].nunique(dropna=False) > 1]
        headers[2:2] = varying
        lines = []
        for row in self.frame.itertuples(index=False):
            shots = [
                "—" if is_missing(getattr(row, m)) or row.n == 0 else PERCENT(getattr(row, m))
                for m in SHOT_FIGURES
            ]
            diff = "—" if is_missing(row.diff_pp) else f"{row.diff_pp:+.2f}"
            lines.append(
                [
                    loss_label(row.loss),
                    f"{float(row.ir):g}",
                    *(str(getattr(row, c)) for c in varying),
                    f"{row.published:.2f}",
                    _figure(row.top1_error, row.top1_error_low, row.top1_error_high, row),
                    diff,
                    *shots,
                    f"{row.source} ({row.row})",
                ]
            )
        return headers, lines


def published_tables(runs: pd.DataFrame, selected: pd.DataFrame) -> list[PublishedTable]:
    """One table per family whose runs carry published figures (none without such runs)."""
    carrying = runs[runs["published"].map(bool)]
    families = sorted(carrying[list(FAMILY)].drop_duplicates().itertuples(index=False, name=None))
    tables = []
    for family in families:
        dataset, protocol, model = family
        same = carrying[(carrying["dataset"] == dataset) & (carrying["protocol"] == protocol)]
        suffix = f"_{model}" if same["model"].nunique() > 1 else ""
        tables.append(
            PublishedTable(
                frame=published_frame(runs, selected, family),
                name=f"published_{dataset}_{protocol}{suffix}",
                title=f"Beside the published figures — top-1 error (%), {dataset_label(dataset)}, "
                f"{protocol} protocol, model {model}",
            )
        )
    return tables
