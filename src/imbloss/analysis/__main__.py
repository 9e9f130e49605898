"""``python -m imbloss.analysis outliers --out DIR``: the first source's Fig. 1 (PNG + CSV)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from imbloss.analysis.outliers import LOSSES, drop, outlier_curves, write_outlier_analysis


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m imbloss.analysis", description="Analyses of the registry's losses."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    outliers = commands.add_parser(
        "outliers",
        help="loss of the first source's outlier example (Sec. III-D, Fig. 1), PNG + CSV",
    )
    outliers.add_argument("--out", required=True, type=Path, help="output folder")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    for path in write_outlier_analysis(args.out):
        print(f"wrote {path}")
    curves = outlier_curves()
    print("share of each loss removed as the outlier goes from 0.001 to 0.9:")
    for name in LOSSES:
        print(f"  {name:12s} {drop(curves, name):6.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
