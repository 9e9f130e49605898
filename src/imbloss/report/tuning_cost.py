"""What a tuning cost and what it chose: a full grid against successive halving, rung by rung.

For every tuning (loss, setting, seeds) with more than one grid point, per tuning method (the
``tuning`` column: ``grid`` or ``halving``, :mod:`imbloss.multirun.halving`):

- the points trained, the member-epochs (the epochs every point trained, the stopped ones
  included) and the whole tuning time (their fit times summed);
- the point chosen on validation G-mean (:func:`imbloss.report.selection.select_on_validation`:
  for halving, among the points its last rung trained to the end) and its test G-mean on the
  protocol's split and on the whole split, with the whole split's 95 % bootstrap interval;
- for halving beside a full grid of the same setting, the share of the grid's member-epochs and
  time it took, and whether its choice's whole-split G-mean lies within the grid choice's
  interval.

For every halving sweep beside a full grid of the same setting, rung by rung (``halving.json``):
Spearman's ρ between the rung's validation scores and the grid's whole-split G-mean of the same
points, and whether the point best in hindsight (the grid's highest whole-split G-mean) was still
among the rung's points and among those it kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from imbloss.multirun.halving import RECORD_FILE, HalvingRecord
from imbloss.report.runs import (
    FULL_PREFIX,
    REPLICATE_COLUMNS,
    SETTING_COLUMNS,
    STATUS_OK,
    STATUS_STOPPED,
)
from imbloss.report.selection import select_on_validation
from imbloss.report.tuning_noise import rho_text, spearman_interval, tuning_cells

# A tuning's identity without its method: a grid and a halving of it are compared.
SAME_TUNING = ("loss", *(k for k in SETTING_COLUMNS if k != "tuning"), *REPLICATE_COLUMNS)
COST_COLUMNS = (
    *SAME_TUNING,
    "tuning",
    "points",
    "member_epochs",
    "whole_s",
    "chosen",
    "gmean",
    "full_gmean",
    "full_gmean_low",
    "full_gmean_high",
    "epochs_share",
    "time_share",
    "within_grid_interval",
)
RUNG_COLUMNS = (
    *SAME_TUNING,
    "rung",
    "epochs",
    "points",
    "kept",
    "rho",
    "rho_low",
    "rho_high",
    "best_in",
    "best_kept",
)


def _matching(frame: pd.DataFrame, key: tuple) -> pd.Series:
    """Rows of ``frame`` whose ``SAME_TUNING`` columns equal ``key`` (missing equals missing)."""
    mask = pd.Series(True, index=frame.index)
    for column, value in zip(SAME_TUNING, key, strict=True):
        mask &= frame[column].isna() if pd.isna(value) else frame[column] == value
    return mask


def _yes_no(value: object) -> str:
    return (
        "—"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else ("yes" if value else "no")
    )


def cost_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per tuning and method (``COST_COLUMNS``), for tunings of more than one point."""
    trained = runs[runs["status"].isin([STATUS_OK, STATUS_STOPPED])]
    rows = []
    for key, group in trained.groupby([*SAME_TUNING, "tuning"], dropna=False, sort=True):
        if group["hparams"].nunique() < 2:
            continue
        chosen = select_on_validation(group)
        pick = chosen.iloc[0] if len(chosen) else None
        rows.append(
            (
                *key,
                len(group),
                int(group["epochs"].sum()),
                float(group["fit_time_s"].sum()),
                None if pick is None else pick["hparams"],
                math.nan if pick is None else pick["gmean"],
                math.nan if pick is None else pick[FULL_PREFIX + "gmean"],
                math.nan if pick is None else pick["full_gmean_low"],
                math.nan if pick is None else pick["full_gmean_high"],
                math.nan,
                math.nan,
                None,
            )
        )
    frame = pd.DataFrame(rows, columns=list(COST_COLUMNS))
    for index, row in frame[frame["tuning"] == "halving"].iterrows():
        key = tuple(row[list(SAME_TUNING)])
        grid = frame[_matching(frame, key) & (frame["tuning"] == "grid")]
        if grid.empty:
            continue
        reference = grid.iloc[0]
        frame.loc[index, "epochs_share"] = row["member_epochs"] / reference["member_epochs"]
        frame.loc[index, "time_share"] = row["whole_s"] / reference["whole_s"]
        low, high = reference["full_gmean_low"], reference["full_gmean_high"]
        frame.at[index, "within_grid_interval"] = bool(low <= row["full_gmean"] <= high)
    return frame


def rung_frame(root: Path, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per rung of every halving sweep below ``root`` that has a full grid of the same
    setting among ``runs`` (``RUNG_COLUMNS``)."""
    by_dir = runs.set_index("run_dir")
    grid_runs = runs[(runs["status"] == STATUS_OK) & (runs["tuning"] == "grid")]
    rows = []
    for path in sorted(Path(root).glob(f"**/{RECORD_FILE}")):
        record = HalvingRecord.read(path)
        sweep = path.parent.relative_to(root).as_posix()
        folders = {
            p.folder: f"{sweep}/{p.folder}" if sweep != "." else p.folder for p in record.points
        }
        members = [f for f, run_dir in folders.items() if run_dir in by_dir.index]
        if not members:
            continue
        points = by_dir.loc[[folders[f] for f in members]].assign(folder=members)
        for key, setting in points.groupby(list(SAME_TUNING), dropna=False, sort=True):
            grid = grid_runs[_matching(grid_runs, key)].set_index("hparams")[FULL_PREFIX + "gmean"]
            if len(grid) < 2:
                continue
            best = grid.idxmax()
            hparams = dict(zip(setting["folder"], setting["hparams"], strict=True))
            for rung in record.rungs:
                in_rung = [f for f in hparams if f in rung.scores]
                scores = {f: (rung.scores[f] or {}).get(record.metric) for f in in_rung}
                matched = [
                    (scores[f], grid[hparams[f]])
                    for f in in_rung
                    if scores[f] is not None and hparams[f] in grid.index
                ]
                rho, low, high = (
                    spearman_interval(*map(list, zip(*matched, strict=True)))
                    if len(matched) >= 3
                    else (math.nan, math.nan, math.nan)
                )
                rows.append(
                    (
                        *key,
                        rung.rung,
                        rung.epochs,
                        len(in_rung),
                        sum(f in rung.kept for f in in_rung),
                        rho,
                        low,
                        high,
                        best in {hparams[f] for f in in_rung},
                        best in {hparams[f] for f in in_rung if f in rung.kept},
                    )
                )
    return pd.DataFrame(rows, columns=list(RUNG_COLUMNS))


def _hparams_label(hparams: object) -> str:
    return "—" if hparams is None else str(hparams)


@dataclass(frozen=True)
class CostTable:
    """The cost and the choice of every tuning, full grid beside successive halving."""

    frame: pd.DataFrame
    name: str = "tuning_cost"
    title: str = "What tuning costs — full grid against successive halving"
    caption: str = (
        "Per tuning (loss, setting, seeds) and method: the points trained; the member-epochs "
        "(epochs trained, summed over the points, the stopped ones included) and the whole fit "
        "time; the point chosen on validation G-mean and its test G-mean (%), on the protocol's "
        "split and on the whole split with its 95 % bootstrap interval; for halving, its share "
        "of the full grid's member-epochs and time, and whether its choice lies within the grid "
        "choice's interval."
    )

    def body(self) -> tuple[list[str], list[list[str]]]:
        headers = [
            "Method",
            "IR",
            "Seed",
            "Tuning",
            "Points",
            "Member-epochs",
            "Time (s)",
            "Chosen",
            "G-mean",
            "Whole-split G-mean [95 %]",
            "Share of grid (epochs / time)",
            "Within grid's interval",
        ]
        lines = []
        for row in self.frame.itertuples(index=False):
            share = (
                "—"
                if math.isnan(row.epochs_share)
                else f"{row.epochs_share:.3f} / {row.time_share:.3f}"
            )
            lines.append(
                [
                    *tuning_cells(row),
                    "successive halving" if row.tuning == "halving" else "full grid",
                    str(row.points),
                    str(row.member_epochs),
                    f"{row.whole_s:,.0f}",
                    _hparams_label(row.chosen),
                    f"{100 * row.gmean:.2f}",
                    f"{100 * row.full_gmean:.2f} [{100 * row.full_gmean_low:.2f}, "
                    f"{100 * row.full_gmean_high:.2f}]",
                    share,
                    _yes_no(row.within_grid_interval),
                ]
            )
        return headers, lines


@dataclass(frozen=True)
class RungTable:
    """How noisy each halving rung's choice is, against the full grid's whole-split figures."""

    frame: pd.DataFrame
    name: str = "halving_rungs"
    title: str = "How noisy each halving rung is — its validation ranking against the full grid"
    caption: str = (
        "Per halving sweep beside a full grid of the same setting, and rung: the epochs its "
        "points trained to, the points and how many it kept; Spearman's ρ between the rung's "
        "validation scores and the full grid's whole-split G-mean of the same points, with its "
        "95 % interval (Fisher's z; none below 4 points); whether the point best in hindsight "
        "(the full grid's highest whole-split G-mean) was among the rung's points, and among "
        "those it kept."
    )

    def body(self) -> tuple[list[str], list[list[str]]]:
        headers = ["Method", "IR", "Seed", "Rung", "Epochs", "Points", "Kept", "ρ [95 %]"]
        headers += ["Best point in rung", "Best point kept"]
        lines = []
        for row in self.frame.itertuples(index=False):
            lines.append(
                [
                    *tuning_cells(row),
                    str(row.rung),
                    str(row.epochs),
                    str(row.points),
                    str(row.kept),
                    rho_text(row.rho, row.rho_low, row.rho_high),
                    _yes_no(row.best_in),
                    _yes_no(row.best_kept),
                ]
            )
        return headers, lines


def cost_tables(root: Path, runs: pd.DataFrame) -> list[CostTable | RungTable]:
    """The cost table when some tuning has several points, and the rung table when a halving
    sweep sits beside its full grid."""
    tables: list[CostTable | RungTable] = []
    costs = cost_frame(runs)
    if not costs.empty and (costs["tuning"] == "halving").any():
        tables.append(CostTable(costs))
    rungs = rung_frame(root, runs)
    if not rungs.empty:
        tables.append(RungTable(rungs))
    return tables
