"""``python -m imbloss.report PATH [--out DIR] [--format md csv tex png]``.

Reads every run below PATH (``metrics.json``, ``error.json``, ``.hydra/config.yaml``) and writes
the tables (Markdown, CSV, LaTeX) and PNG plots into DIR (default ``PATH/report``), printing
where it wrote what. Exits with status 2 and one message when PATH holds no run.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from imbloss.errors import ConfigError
from imbloss.report.build import FORMATS, build_report


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
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = build_report(args.path, args.out, args.format)
    except ConfigError as error:
        print(f"imbloss.report: error: {error}", file=sys.stderr)
        return 2
    counts = report.runs["status"].value_counts()
    summary = ", ".join(f"{count} {status}" for status, count in counts.items())
    print(
        f"read {len(report.runs)} runs under {args.path} ({summary}); "
        f"{len(report.selected)} tunings selected on validation G-mean"
    )
    for path in report.written:
        print(f"wrote {path}")
    print(f"report: {report.out_dir / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
