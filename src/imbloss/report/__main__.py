"""``python -m imbloss.report PATH [--out DIR] [--format md csv tex png] [--figures last]
[--reference LOSS]``.

Reads every run below PATH (``metrics.json``, ``error.json``, ``.hydra/config.yaml``) and writes
the tables (Markdown, CSV, LaTeX) and PNG plots into DIR (default ``PATH/report``), printing
where it wrote what. ``--figures last`` builds every table from the weights after the final
epoch instead of the checkpoint selected on validation G-mean; ``--reference`` names the loss the
paired comparisons are made against (default ``pf``). A campaign's claims page is written by
``python -m imbloss.results page`` (the campaign uses the report, not the other way). Exits
with status 2 and one message when PATH holds no run or an option's value is not accepted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from imbloss.errors import ConfigError
from imbloss.report.build import FORMATS, build_report
from imbloss.report.runs import FIGURES


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
    return 0


if __name__ == "__main__":
    sys.exit(main())
