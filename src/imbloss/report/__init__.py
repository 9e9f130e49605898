"""The report: every run below a path turned into the sources' tables and plots.

``python -m imbloss.report PATH`` (see :mod:`imbloss.report.__main__`), or from Python::

    from imbloss.report import build_report, load_report
    report = build_report("logs/multiruns/2024-05-01_12-00-00-000000")
    loaded = load_report(report.out_dir)
"""

from imbloss.report.build import FORMATS, LoadedReport, Report, build_report, load_report
from imbloss.report.runs import load_runs
from imbloss.report.selection import select_on_validation

__all__ = [
    "FORMATS",
    "LoadedReport",
    "Report",
    "build_report",
    "load_report",
    "load_runs",
    "select_on_validation",
]
