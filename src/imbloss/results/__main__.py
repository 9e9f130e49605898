"""``python -m imbloss.results run [STAGE ...] | status | stop | compact [PATH]``.

- ``run``: run (or continue) the named stages, or by default every stage in order of priority up
  to the first that waits for a decision (it says which); each stage's multiruns go through
  ``train.py`` in the repository root, into ``results/fmnist_step``.
- ``status``: per stage, the jobs finished, failed and still to run.
- ``stop``: stop the running ``run`` and every process of its multirun, then check that no
  process trains a run folder of the campaign (:mod:`imbloss.results.processes`); exit status 1
  naming any that still does.
- ``compact``: rewrite every finished run's ``predictions.npz`` below PATH (default the campaign
  folder) in the compact form that is committed.

Exit status 2 with one message for an unknown stage, or a named stage whose decisions are not
recorded.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from imbloss.errors import ConfigError
from imbloss.results.compact import compact_tree
from imbloss.results.plan import (
    CAMPAIGN_DIR,
    check_decided,
    job_dirname,
    stage_commands,
    stage_named,
    stages,
)
from imbloss.results.processes import hold_runner, run_in_own_group, stop_campaign
from imbloss.runs.layout import RunFolder


def _run(names: Sequence[str], root: Path) -> int:
    """Run the named stages (all checked first), or every stage in order up to the first that
    waits for a decision."""
    plan = stages()
    if names:
        chosen = [stage_named(name, plan) for name in names]
        for stage in chosen:
            check_decided(stage)
    else:
        chosen = []
        for stage in plan:
            try:
                check_decided(stage)
            except ConfigError as waiting:
                print(f"campaign: stops before stage {stage.name}: {waiting}")
                break
            chosen.append(stage)
    if not (root / "train.py").is_file():
        raise ConfigError(f"no train.py in {root}; accepted: run from the repository root")
    with hold_runner(root / CAMPAIGN_DIR):
        for stage in chosen:
            print(f"campaign: stage {stage.name}: {stage.purpose} ({len(stage.jobs())} jobs)")
            for arguments in stage_commands(stage):
                code = run_in_own_group([sys.executable, "train.py", *arguments], cwd=root)
                if code != 0:
                    return code
    return 0


def stage_status(root: Path) -> list[tuple[str, int, int, int]]:
    """(stage, finished, failed, to run) for each stage, read from the campaign folder."""
    rows = []
    for stage in stages():
        folders = [RunFolder(root / CAMPAIGN_DIR / job_dirname(job)) for job in stage.jobs()]
        finished = sum(f.metrics.is_file() for f in folders)
        failed = sum(f.error.is_file() and not f.metrics.is_file() for f in folders)
        rows.append((stage.name, finished, failed, len(folders) - finished - failed))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m imbloss.results")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run or continue the campaign's stages")
    run.add_argument("stages", nargs="*", help="stage names (default: all, in order)")
    commands.add_parser("status", help="jobs finished, failed and to run, per stage")
    commands.add_parser("stop", help="stop the running campaign and every process of it")
    compact = commands.add_parser("compact", help="compact every finished run's predictions")
    compact.add_argument("path", nargs="?", default=CAMPAIGN_DIR)
    args = parser.parse_args(argv)
    root = Path.cwd()
    try:
        if args.command == "run":
            return _run(args.stages, root)
        if args.command == "stop":
            code, lines = stop_campaign(root / CAMPAIGN_DIR)
            print("\n".join(lines))
            return code
        if args.command == "status":
            for name, finished, failed, left in stage_status(root):
                print(f"{name:12s} {finished:3d} finished, {failed:3d} failed, {left:3d} to run")
            return 0
        written = compact_tree(Path(args.path))
        print(f"compacted {written} predictions files below {args.path}")
        return 0
    except ConfigError as error:
        print(f"imbloss.results: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
