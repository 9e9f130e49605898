"""Build a report folder from the runs below a path, and load one back (for notebooks).

Layout of a report folder (default ``<PATH>/report``)::

    report.md            every table, the failed runs, links to the plots
    index.json           the tables (name, title, files) and plots, in report order
    runs.csv             one row per run read (ok, failed, unfinished)
    selected.csv         one row per tuning: the grid point chosen on validation G-mean
    <table>.md|.csv|.tex each table (CSV: tidy, unrounded cells with counts and status):
                         Table I, the figure tables on the protocol's test split, the same on
                         the whole test split (``_full``), our cells beside the papers' own
                         figures where a preset lists them (``published_*``), the paired
                         comparisons (``paired_*``),
                         how noisy each grid's choice is (``tuning_noise``), and where a
                         successive-halving sweep ran, its cost and choice beside the full
                         grid's (``tuning_cost``) and the noise of each rung (``halving_rungs``)
    plots/*.png          G-mean per loss with intervals (both test sets), batch diagnostics,
                         G-mean against IR, per-class recall, training curves

``figures`` chooses the weights every table is built from: ``selected`` (the checkpoint chosen
on validation G-mean, the default) or ``last`` (the weights after the final epoch); the report
says which. ``reference`` names the loss of the paired comparisons (default ``pf`` when it ran).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from imbloss.errors import ConfigError
from imbloss.report.document import report_markdown
from imbloss.report.paired import paired_tables, resolve_reference
from imbloss.report.plots import write_plots
from imbloss.report.published import published_tables
from imbloss.report.render import FORMATS as TABLE_FORMATS
from imbloss.report.render import write_table
from imbloss.report.runs import LIST_COLUMNS, check_figures, load_runs
from imbloss.report.selection import select_on_validation, undecided_groups
from imbloss.report.tables import build_tables
from imbloss.report.tuning_cost import cost_tables
from imbloss.report.tuning_noise import noise_table
from imbloss.runs.layout import CONFIG_FILE, ERROR_FILE, METRICS_FILE

REPORT_DIRNAME = "report"
PLOTS_DIRNAME = "plots"
INDEX_FILE = "index.json"
REPORT_FILE = "report.md"
FORMATS = (*TABLE_FORMATS, "png")
FIGURE_NOTES = {
    "selected": "the checkpoint selected on validation G-mean (the headline)",
    "last": "the weights after the final epoch (--figures last); tunings choose their grid "
    "point on the last epoch's validation G-mean",
}


@dataclass(frozen=True)
class Report:
    """What :func:`build_report` read and wrote."""

    out_dir: Path
    runs: pd.DataFrame
    selected: pd.DataFrame
    written: list[Path]
    figures: str
    reference: str | None


def _check_formats(formats: Sequence[str]) -> None:
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ConfigError(
            f"unknown report format(s) {', '.join(unknown)}; accepted: {', '.join(FORMATS)}"
        )


def _write_frame(frame: pd.DataFrame, path: Path) -> Path:
    encoded = frame.assign(**{c: frame[c].map(json.dumps) for c in LIST_COLUMNS if c in frame})
    encoded.to_csv(path, index=False)
    return path


def build_report(
    path: Path | str,
    out_dir: Path | str | None = None,
    formats: Sequence[str] = FORMATS,
    figures: str = "selected",
    reference: str | None = None,
) -> Report:
    """Read every run below ``path``; write tables (and plots) into ``out_dir``.

    Raises ConfigError when ``path`` holds no run, a format or ``figures`` is unknown, or the
    ``reference`` loss asked for has no finished run.
    """
    _check_formats(formats)
    check_figures(figures)
    source = Path(path)
    out = Path(out_dir) if out_dir is not None else source / REPORT_DIRNAME
    if not source.is_dir():
        raise ConfigError(
            f"report path {str(source)!r} is not a folder; accepted: a folder of runs"
        )
    runs = load_runs(source, exclude=out, figures=figures)
    if runs.empty:
        raise ConfigError(
            f"no runs under {str(source)!r}: no folder with {METRICS_FILE}, {ERROR_FILE} or "
            f"{CONFIG_FILE.as_posix()}; accepted: a run folder or a folder of runs "
            "(e.g. logs/multiruns/<timestamp>)"
        )
    selected = select_on_validation(runs)
    undecided = undecided_groups(runs, selected)
    reference = resolve_reference(selected, reference)
    tables: list[Any] = build_tables(runs, selected)
    tables += published_tables(runs, selected)
    if reference is not None:
        tables += paired_tables(selected, reference)
    noise = noise_table(runs)
    if noise is not None:
        tables.append(noise)
    tables += cost_tables(source, runs)
    if figures == "last":
        for table in tables:
            object.__setattr__(table, "caption", f"Weights after the final epoch. {table.caption}")

    out.mkdir(parents=True, exist_ok=True)
    written = [_write_frame(runs, out / "runs.csv"), _write_frame(selected, out / "selected.csv")]
    index: dict[str, Any] = {
        "source": str(source),
        "figures": figures,
        "reference": reference,
        "tables": [],
        "plots": [],
    }
    for table in tables:
        files = write_table(table, out, formats)
        written += files
        index["tables"].append(
            {"name": table.name, "title": table.title, "files": [f.name for f in files]}
        )
    plots = write_plots(selected, source, out / PLOTS_DIRNAME) if "png" in formats else []
    written += plots
    index["plots"] = [p.relative_to(out).as_posix() for p in plots]
    (out / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n")
    document = report_markdown(
        source, runs, selected, undecided, tables, plots, out, FIGURE_NOTES[figures], reference
    )
    (out / REPORT_FILE).write_text(document)
    written += [out / INDEX_FILE, out / REPORT_FILE]
    return Report(out, runs, selected, written, figures, reference)


@dataclass(frozen=True)
class LoadedReport:
    """A report folder read back: its tables (tidy CSV and Markdown) and plot paths."""

    folder: Path
    titles: dict[str, str]
    tables: dict[str, pd.DataFrame]
    markdown: dict[str, str]
    plots: list[Path]
    runs: pd.DataFrame
    figures: str
    reference: str | None


def load_report(folder: Path | str) -> LoadedReport:
    """Read a folder written by :func:`build_report` (tables in report order)."""
    folder = Path(folder)
    index_path = folder / INDEX_FILE
    if not index_path.is_file():
        raise ConfigError(
            f"{str(folder)!r} is not a report folder (no {INDEX_FILE}); accepted: the folder "
            "written by `python -m imbloss.report PATH` (default PATH/report)"
        )
    index = json.loads(index_path.read_text())
    entries = index["tables"]
    return LoadedReport(
        folder=folder,
        titles={t["name"]: t["title"] for t in entries},
        tables={
            t["name"]: pd.read_csv(folder / f"{t['name']}.csv")
            for t in entries
            if f"{t['name']}.csv" in t["files"]
        },
        markdown={
            t["name"]: (folder / f"{t['name']}.md").read_text()
            for t in entries
            if f"{t['name']}.md" in t["files"]
        },
        plots=[folder / p for p in index["plots"]],
        runs=pd.read_csv(folder / "runs.csv"),
        figures=index.get("figures", "selected"),
        reference=index.get("reference"),
    )
