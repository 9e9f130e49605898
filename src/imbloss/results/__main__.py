"""``python -m imbloss.results run | status | stop | compact | page``: a campaign's runs.

Every command takes ``--campaign NAME`` (a file ``campaigns/NAME.yaml``; default ``fmnist``)
and ``--dir DIR`` (its runs' folder; default the file's ``dir``):

- ``run [--replicates K] [STAGE ...] [-- OVERRIDE ...]``: run (or continue) the named stages, or
  every stage in order of priority; ``--replicates K`` runs replicates 0 .. K - 1 only; the
  overrides after ``--`` go to every job (a smoke test: ``trainer.max_epochs=1``, a data folder)
  and stay out of the folder names. Each multirun runs in a process group of its own
  (:mod:`imbloss.results.processes`). On a CPU without native bf16 a bf16 campaign stops with one
  line, unless ``--allow-emulated-bf16``.
- ``status``: per stage, the jobs finished, failed and still to run; the jobs a process trains
  now, each with its epochs done and planned; the time left, estimated from the finished runs.
- ``stop``: stop the running ``run`` and every process of its multirun, then check that no
  process trains a run folder of the campaign; exit status 1 naming any that still does.
- ``compact [PATH]``: rewrite every finished run's ``predictions.npz`` below PATH (default the
  campaign folder) in the compact form that is committed.
- ``page --out FILE [--readme README.md]``: write the campaign's claims page (and the README's
  headline table) from its finished runs, with no training.

Exit status 2 with one message for an unknown campaign or stage, or a bad option.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from imbloss.errors import ConfigError
from imbloss.results.compact import compact_tree
from imbloss.results.config import DEFAULT_CAMPAIGN, CampaignConfig, load_campaign
from imbloss.results.plan import (
    check_replicates,
    chosen_stages,
    grid_commands,
    jobs_side_by_side,
    parse_extras,
    precisions,
    reuse_finished,
    stage_status,
    time_left,
)
from imbloss.results.processes import hold_runner, run_in_own_group, stop_campaign
from imbloss.runs.environment import bf16_isa, cpu_model


def _check_bf16(campaign: CampaignConfig, names: Sequence[str], extras: dict[str, str]) -> None:
    """Refuse a bf16 campaign on a CPU that only emulates bf16 (a GPU run is not checked)."""
    used = {extras["trainer.precision"]} if "trainer.precision" in extras else None
    used = used or precisions(campaign, chosen_stages(campaign, names))
    if torch.cuda.is_available() or not any("bf16" in p for p in used) or bf16_isa():
        return
    raise ConfigError(
        f"this CPU ({cpu_model()}) has no native bf16 (no avx512_bf16, amx_bf16 or "
        "avx_ne_convert): bf16 autocast would be emulated and slow; accepted: a CPU with native "
        "bf16, or --allow-emulated-bf16 to go on"
    )


def _run(args: argparse.Namespace, campaign: CampaignConfig, folder: Path, repo: Path) -> int:
    """Run the chosen stages' multiruns in order; the exit status of the first that fails."""
    replicates = check_replicates(args.replicates)
    extras = parse_extras(args.overrides, campaign)
    stages = chosen_stages(campaign, args.stages)
    if not args.allow_emulated_bf16:
        _check_bf16(campaign, args.stages, extras)
    if not (repo / "train.py").is_file():
        raise ConfigError(f"no train.py in {repo}; accepted: run from the repository root")
    folder.mkdir(parents=True, exist_ok=True)
    with hold_runner(folder):
        for stage in stages:
            jobs = campaign.stage_jobs(stage, replicates)
            print(
                f"campaign {campaign.name}: stage {stage.name}: {stage.purpose} ({len(jobs)} jobs)"
            )
            # earlier runs are this campaign's jobs at its own settings, not at overridden ones
            for copied in [] if extras else reuse_finished(campaign, jobs, folder, repo):
                print(f"campaign {campaign.name}: reused the finished run {copied}")
            for grid in stage.grids:
                for arguments in grid_commands(campaign, grid, folder, replicates, extras):
                    code = run_in_own_group([sys.executable, "train.py", *arguments], cwd=repo)
                    if code != 0:
                        return code
    return 0


def _status(campaign: CampaignConfig, folder: Path, repo: Path) -> int:
    for stage in campaign.stages:
        s = stage_status(campaign, stage, folder)
        running = f" ({len(s.running)} running)" if s.running else ""
        print(
            f"{s.stage:12s} {s.finished:3d} finished, {s.failed:3d} failed, "
            f"{s.to_run:3d} to run{running}"
        )
        for name, done, planned in s.running:
            print(f"  running: {name}, epoch {done}" + (f" of {planned}" if planned else ""))
    left = time_left(campaign, folder, jobs_side_by_side(campaign, repo))
    if left:
        print(left.sentence())
    return 0


def _page(args: argparse.Namespace, campaign: CampaignConfig, folder: Path, repo: Path) -> int:
    from imbloss.results.page import write_campaign_page

    readme = f" --readme {args.readme}" if args.readme else ""
    command = f"python -m imbloss.results page --campaign {campaign.name} --out {args.out}{readme}"
    written = write_campaign_page(campaign, folder, Path(args.out), repo, args.readme, command)
    print(f"results page: {written}")
    return 0


def parser() -> argparse.ArgumentParser:
    """The command line."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--campaign", default=DEFAULT_CAMPAIGN, help="campaigns/NAME.yaml (default: fmnist)"
    )
    common.add_argument("--dir", default=None, help="the runs' folder (default: the file's dir)")
    top = argparse.ArgumentParser(prog="python -m imbloss.results")
    commands = top.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", parents=[common], help="run or continue the stages")
    run.add_argument("stages", nargs="*", help="stage names (default: all, in order)")
    run.add_argument("--replicates", type=int, default=None, help="the first K replicates only")
    run.add_argument(
        "--allow-emulated-bf16",
        action="store_true",
        help="train a bf16 campaign on a CPU without native bf16 (slow)",
    )
    commands.add_parser("status", parents=[common], help="jobs finished, failed, to run")
    commands.add_parser("stop", parents=[common], help="stop the running campaign whole")
    compact = commands.add_parser("compact", parents=[common], help="compact the predictions")
    compact.add_argument("path", nargs="?", default=None)
    page = commands.add_parser("page", parents=[common], help="write the claims page")
    page.add_argument("--out", required=True, help="the page to write (Markdown)")
    page.add_argument("--readme", default=None, help="also rebuild this README's headline")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    overrides: list[str] = []
    if "--" in raw:
        cut = raw.index("--")
        raw, overrides = raw[:cut], raw[cut + 1 :]
    args = parser().parse_args(raw)
    args.overrides = overrides
    if overrides and args.command != "run":
        print("imbloss.results: error: overrides after -- go with 'run' only", file=sys.stderr)
        return 2
    repo = Path.cwd()  # the repository root: campaigns/, train.py
    try:
        campaign = load_campaign(args.campaign, repo)
        folder = campaign.root(repo, args.dir)
        if args.command == "run":
            return _run(args, campaign, folder, repo)
        if args.command == "status":
            return _status(campaign, folder, repo)
        if args.command == "stop":
            code, lines = stop_campaign(folder)
            print("\n".join(lines))
            return code
        if args.command == "page":
            return _page(args, campaign, folder, repo)
        path = Path(args.path) if args.path else folder
        written = compact_tree(path)
        print(f"compacted {written} predictions files below {path}")
        return 0
    except ConfigError as error:
        print(f"imbloss.results: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
