"""Write a :class:`~imbloss.report.tables.Table` as Markdown, LaTeX and tidy CSV.

Markdown and LaTeX print what a reader compares: the mean over seeds ± the half-width of its 95 %
Student-t interval, in the table's unit (percent with 2 decimals for the first source's tables,
fractions with 4 for the second source's), the best per comparison in bold (``**`` /
``\\textbf``) and ``[n=k]`` runs averaged.
The CSV keeps every cell unrounded, in the metrics' own unit (fractions; seconds), one row per
cell with its keys, counts and status (ok, partial, failed, missing).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from tabulate import tabulate

from imbloss.report.cells import count_note, format_seconds
from imbloss.report.labels import is_missing
from imbloss.report.paired import PairedTable, paired_markdown
from imbloss.report.runs import SETTING_COLUMNS
from imbloss.report.tables import Table
from imbloss.report.tuning_noise import NoiseTable

FORMATS = ("md", "csv", "tex")
_CSV_KEYS = ("loss", *SETTING_COLUMNS, "metric")
_CSV_STATS = (
    "mean",
    "std",
    "ci_low",
    "ci_high",
    "n",
    "n_failed",
    "n_unfinished",
    "whole_s",
    "tunings",
)
_CSV_FLAGS = ("best", "status")
_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "α": r"$\alpha$",
    "Δ": r"$\Delta$",
    "†": r"$\dagger$",
    "±": r"$\pm$",
    "—": "---",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(char, char) for char in text)


def _bold(text: str, style: str) -> str:
    return f"**{text}**" if style == "md" else f"\\textbf{{{text}}}"


def cell_text(table: Table, cell: Any, style: str) -> str:
    """One cell as printed: ``88.43 ± 0.52 [n=3]`` (± half the 95 % t interval),
    ``2,052 (108) [n=19]``, ``—``."""
    note = count_note(cell.n, cell.n_failed, cell.n_unfinished)
    if cell.n == 0:
        text = "—" + (f" {note}" if cell.n_failed or cell.n_unfinished else "")
        return text if style == "md" else latex_escape(text)
    if table.number is None:
        text = f"{format_seconds(cell.whole_s)} ({format_seconds(cell.mean)}) {note}"
        return text if style == "md" else latex_escape(text)
    mean = table.number(cell.mean)
    if cell.best:
        mean = _bold(mean, style)
    half = (cell.ci_high - cell.ci_low) / 2
    spread = f" ± {table.number(half)}" if cell.n > 1 and not is_missing(half) else ""
    if style == "tex":
        spread = latex_escape(spread)
    return f"{mean}{spread} {note}"


def _layout(table: Table, grid: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = grid[list(table.row_keys)].drop_duplicates().reset_index(drop=True)
    cols = grid[list(table.col_keys)].drop_duplicates().reset_index(drop=True)
    return rows, cols


def _row_labels(table: Table, rows: pd.DataFrame) -> list[list[str]]:
    """Row-key labels, a group's label printed on its first row only (as the sources print)."""
    labelled = [[table.label(k, row[k]) for k in table.row_keys] for _, row in rows.iterrows()]
    shown, previous = [], None
    for labels in labelled:
        line = list(labels)
        if previous is not None:
            for i in range(len(labels) - 1):
                if labels[: i + 1] != previous[: i + 1]:
                    break
                line[i] = ""
        shown.append(line)
        previous = labels
    return shown


def _body(table: Table, grid: pd.DataFrame, style: str) -> tuple[list[list[str]], pd.DataFrame]:
    rows, cols = _layout(table, grid)
    texts = [cell_text(table, cell, style) for cell in grid.itertuples(index=False)]
    row_labels = _row_labels(table, rows)
    if style == "tex":
        row_labels = [[latex_escape(x) for x in line] for line in row_labels]
    width = len(cols)
    body = [row_labels[i] + texts[i * width : (i + 1) * width] for i in range(len(rows))]
    return body, cols


def _col_label(table: Table, col: Any) -> str:
    return " ".join(filter(None, (table.label(k, col[k]) for k in table.col_keys)))


def to_markdown(table: Table, grid: pd.DataFrame | None = None) -> str:
    """The table as a Markdown section: title, caption, pipe table."""
    grid = table.grid() if grid is None else grid
    body, cols = _body(table, grid, "md")
    headers = [table.headers.get(k, k) for k in table.row_keys]
    headers += [_col_label(table, col) for _, col in cols.iterrows()]
    body = [[text.replace("|", "\\|") for text in line] for line in body]
    rendered = tabulate(body, headers=headers, tablefmt="pipe", disable_numparse=True)
    return f"### {table.title}\n\n{table.caption}\n\n{rendered}\n"


def _latex_header(table: Table, cols: pd.DataFrame) -> list[str]:
    """One or two header lines: the leading column keys spanning, the last key below."""
    stub = [latex_escape(table.headers.get(k, k)) for k in table.row_keys]
    if len(table.col_keys) == 1:
        return [" & ".join(stub + [latex_escape(_col_label(table, c)) for _, c in cols.iterrows()])]
    groups: list[tuple[str, int]] = []
    for _, col in cols.iterrows():
        label = " ".join(filter(None, (table.label(k, col[k]) for k in table.col_keys[:-1])))
        if groups and groups[-1][0] == label:
            groups[-1] = (label, groups[-1][1] + 1)
        else:
            groups.append((label, 1))
    top = [""] * len(stub) + [
        f"\\multicolumn{{{span}}}{{c}}{{{latex_escape(label)}}}" for label, span in groups
    ]
    bottom = stub + [
        latex_escape(table.label(table.col_keys[-1], c[table.col_keys[-1]]))
        for _, c in cols.iterrows()
    ]
    return [" & ".join(top), " & ".join(bottom)]


def to_latex(table: Table, grid: pd.DataFrame | None = None) -> str:
    """The table as a LaTeX ``table`` environment (plain ``tabular`` with ``\\hline``)."""
    grid = table.grid() if grid is None else grid
    body, cols = _body(table, grid, "tex")
    spec = "l" * len(table.row_keys) + "c" * len(cols)
    lines = [
        "\\begin{table}[t]",
        "\\centering",
        f"\\caption{{{latex_escape(table.title)}. {latex_escape(table.caption)}}}",
        f"\\label{{tab:{table.name}}}",
        f"\\begin{{tabular}}{{{spec}}}",
        "\\hline",
        *(f"{line} \\\\" for line in _latex_header(table, cols)),
        "\\hline",
        *(" & ".join(line) + " \\\\" for line in body),
        "\\hline",
        "\\end{tabular}",
        "\\end{table}",
    ]
    return "\n".join(lines) + "\n"


def to_csv_frame(table: Table, grid: pd.DataFrame | None = None) -> pd.DataFrame:
    """Tidy cells: keys (constant keys of the table filled in), unrounded stats, status."""
    grid = (table.grid() if grid is None else grid).copy()
    for key in (k for k in _CSV_KEYS if k in grid.columns):
        values = table.cells[key].drop_duplicates()
        if len(values) == 1 and values.notna().all():  # e.g. the dataset of a one-family table
            grid[key] = grid[key].fillna(values.iloc[0])
    columns = [c for c in (*_CSV_KEYS, *_CSV_STATS, *_CSV_FLAGS) if c in grid.columns]
    return grid[columns]


def paired_latex(table: PairedTable | NoiseTable) -> str:
    """A table with its own ``body()`` (paired comparisons, tuning noise) as a LaTeX ``table``."""
    headers, lines = table.body()
    rows = [" & ".join(latex_escape(text) for text in line) + " \\\\" for line in lines]
    return (
        "\n".join(
            [
                "\\begin{table}[t]",
                "\\centering",
                f"\\caption{{{latex_escape(table.title)}. {latex_escape(table.caption)}}}",
                f"\\label{{tab:{table.name}}}",
                f"\\begin{{tabular}}{{ll{'c' * (len(headers) - 2)}}}",
                "\\hline",
                " & ".join(latex_escape(h) for h in headers) + " \\\\",
                "\\hline",
                *rows,
                "\\hline",
                "\\end{tabular}",
                "\\end{table}",
            ]
        )
        + "\n"
    )


def table_markdown(table: Table | PairedTable | NoiseTable) -> str:
    """Any table of the report as its Markdown section."""
    return to_markdown(table) if isinstance(table, Table) else paired_markdown(table)


def write_table(
    table: Table | PairedTable | NoiseTable, out_dir: Path, formats: Sequence[str] = FORMATS
) -> list[Path]:
    """Write ``<name>.md|.csv|.tex`` for the requested formats; the paths written."""
    if not isinstance(table, Table):  # a table with its own body() and tidy frame
        writers = {
            "md": lambda path: path.write_text(paired_markdown(table)),
            "tex": lambda path: path.write_text(paired_latex(table)),
            "csv": lambda path: table.frame.to_csv(path, index=False),
        }
    else:
        grid = table.grid()
        writers = {
            "md": lambda path: path.write_text(to_markdown(table, grid)),
            "tex": lambda path: path.write_text(to_latex(table, grid)),
            "csv": lambda path: to_csv_frame(table, grid).to_csv(path, index=False),
        }
    written = []
    for fmt in formats:
        if fmt in writers:
            path = out_dir / f"{table.name}.{fmt}"
            writers[fmt](path)
            written.append(path)
    return written
