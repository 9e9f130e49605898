"""``report.md``: what was read, what failed, every table and every plot, in one readable page."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from imbloss.report.labels import ir_label, number_label
from imbloss.report.render import to_markdown
from imbloss.report.runs import STATUS_FAILED, STATUS_OK, STATUS_UNFINISHED
from imbloss.report.tables import Table


def _run_summary(runs: pd.DataFrame, selected: pd.DataFrame, undecided: pd.DataFrame) -> str:
    counts = runs["status"].value_counts()
    lines = [
        f"- runs read: {len(runs)} — finished {counts.get(STATUS_OK, 0)}, "
        f"failed {counts.get(STATUS_FAILED, 0)}, unfinished {counts.get(STATUS_UNFINISHED, 0)} "
        "(no metrics.json nor error.json: still running, or killed)",
        f"- tunings (loss x setting x seeds): {len(selected)}, each reported by its grid point "
        "with the best validation G-mean",
    ]
    if len(undecided):
        lines.append(f"- tunings left out, several runs and no validation G-mean: {len(undecided)}")
    return "\n".join(lines)


def _problem_runs(runs: pd.DataFrame) -> str:
    problems = runs[runs["status"] != STATUS_OK]
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
    tables: Sequence[Table],
    plots: Sequence[Path],
    out_dir: Path,
) -> str:
    """The whole report as one Markdown page (image links relative to ``out_dir``)."""
    parts = [
        f"# imbloss report: `{source}`",
        _run_summary(runs, selected, undecided),
        "## Tables",
        *(to_markdown(table) for table in tables),
        _problem_runs(runs),
    ]
    if plots:
        parts.append("## Plots")
        parts.extend(f"![{path.stem}]({path.relative_to(out_dir).as_posix()})" for path in plots)
    return "\n\n".join(part for part in parts if part) + "\n"
