"""``report.md``: what was read, what failed, every table and every plot, in one readable page."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from imbloss.report.labels import ir_label, loss_label, number_label
from imbloss.report.paired import PairedTable
from imbloss.report.render import table_markdown
from imbloss.report.runs import STATUS_FAILED, STATUS_OK, STATUS_STOPPED, STATUS_UNFINISHED
from imbloss.report.tables import Table


def _run_summary(
    runs: pd.DataFrame,
    selected: pd.DataFrame,
    undecided: pd.DataFrame,
    figures_note: str,
    reference: str | None,
) -> str:
    counts = runs["status"].value_counts()
    compared = (
        f"each loss against {loss_label(reference)}, seed by seed (`--reference`)"
        if reference is not None
        else "none (the reference loss, `--reference`, default pf, has no finished run)"
    )
    lines = [
        f"- figures of: {figures_note}",
        "- test sets: the protocol's test split (the sources' tables) and the whole official "
        "test split of the task's classes (tables and plots marked *whole test split*)",
        f"- paired comparisons: {compared}",
        f"- runs read: {len(runs)} — finished {counts.get(STATUS_OK, 0)}, "
        f"failed {counts.get(STATUS_FAILED, 0)}, unfinished {counts.get(STATUS_UNFINISHED, 0)} "
        "(no metrics.json nor error.json: still running, or killed)"
        + (
            f", stopped early by a halving rung {counts[STATUS_STOPPED]}"
            if counts.get(STATUS_STOPPED)
            else ""
        ),
        f"- tunings (loss x setting x seeds): {len(selected)}, each reported by its grid point "
        "with the best validation G-mean",
    ]
    if len(undecided):
        lines.append(f"- tunings left out, several runs and no validation G-mean: {len(undecided)}")
    return "\n".join(lines)


def _problem_runs(runs: pd.DataFrame) -> str:
    problems = runs[runs["status"].isin([STATUS_FAILED, STATUS_UNFINISHED])]
    if problems.empty:
        return ""
    lines = ["## Failed and unfinished runs", ""]
    for run in problems.itertuples(index=False):
        message = run.error.splitlines()[0] if run.error else "no metrics.json nor error.json"
        lines.append(
            f"- `{run.run_dir}` ({run.loss}, {run.dataset}, {ir_label(run.ir)}, "
            f"seed={number_label(run.seed)}): {run.status} — {message}"
        )
    return "\n".join(lines) + "\n"


def report_markdown(
    source: Path,
    runs: pd.DataFrame,
    selected: pd.DataFrame,
    undecided: pd.DataFrame,
    tables: Sequence[Table | PairedTable],
    plots: Sequence[Path],
    out_dir: Path,
    figures_note: str,
    reference: str | None,
) -> str:
    """The whole report as one Markdown page (image links relative to ``out_dir``)."""
    parts = [
        f"# imbloss report: `{source}`",
        _run_summary(runs, selected, undecided, figures_note, reference),
        "## Tables",
        *(table_markdown(table) for table in tables),
        _problem_runs(runs),
    ]
    if plots:
        parts.append("## Plots")
        parts.extend(f"![{path.stem}]({path.relative_to(out_dir).as_posix()})" for path in plots)
    return "\n\n".join(part for part in parts if part) + "\n"
