"""``python -m imbloss.report PATH [--out DIR] [--format md csv tex png] [--figures last]
[--reference LOSS] [--claims FILE]``.

Reads every run below PATH (``metrics.json``, ``error.json``, ``.hydra/config.yaml``) and writes
the tables (Markdown, CSV, LaTeX) and PNG plots into DIR (default ``PATH/report``), printing
where it wrote what. ``--figures last`` builds every table from the weights after the final
epoch instead of the checkpoint selected on validation G-mean; ``--reference`` names the loss the
paired comparisons are made against (default ``pf``). ``--claims FILE`` also writes the results
campaign's page (``docs/results.md``: :mod:`imbloss.results.claims`) from the same runs. Exits
with status 2 and one message when PATH holds no run or an option's value is not accepted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from imbloss.errors import ConfigError
from imbloss.report.build import FORMATS, build_report
from imbloss.report.runs import FIGURES, load_runs
from imbloss.results.claims import write_results_page


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m imbloss.report",
        description="Turn the runs below PATH into the sources' tables and plots.",
    )
    parser.add_argument("path", help="a run folder or a folder of runs (e.g. logs/multiruns)")
    parser.add_argument("--out", default=None, help="output folder (default: PATH/report)")
    parser.add_argument(
        "--format",
        nargs="+",
        default=list(FORMATS),
        choices=FORMATS,
        help="what to write (default: all): md, csv, tex tables; png plots",
    )
    parser.add_argument(
        "--figures",
        default="selected",
        choices=FIGURES,
        help="weights the tables use: selected (checkpoint chosen on validation G-mean, the "
        "default) or last (after the final epoch)",
    )
    parser.add_argument(
        "--reference",
        default=None,
        help="loss of the paired comparisons (default: pf, when it ran)",
    )
    parser.add_argument(
        "--claims",
        default=None,
        metavar="FILE",
        help="also write the campaign's results page with one verdict per claim (docs/results.md)",
    )
    parser.add_argument(
        "--readme",
        default=None,
        metavar="FILE",
        help="with --claims: put the headline verdicts into FILE between its marker comments",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = build_report(args.path, args.out, args.format, args.figures, args.reference)
    except ConfigError as error:
        print(f"imbloss.report: error: {error}", file=sys.stderr)
        return 2
    counts = report.runs["status"].value_counts()
    summary = ", ".join(f"{count} {status}" for status, count in counts.items())
    print(
        f"read {len(report.runs)} runs under {args.path} ({summary}); "
        f"{len(report.selected)} tunings selected on validation G-mean; figures of the "
        f"{report.figures} weights"
    )
    for path in report.written:
        print(f"wrote {path}")
    print(f"report: {report.out_dir / 'report.md'}")
    if args.claims is not None:
        root = Path(args.path)
        command = " ".join(["python -m imbloss.report", args.path, "--claims", args.claims])
        if args.readme:
            command += f" --readme {args.readme}"
        page = write_results_page(
            root,
            Path(args.claims),
            lambda path, figures: load_runs(path, exclude=report.out_dir, figures=figures),
            command,
            Path(args.readme) if args.readme else None,
        )
        print(f"results page: {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
