"""Does a long multirun hold its memory? RSS of one process over a sweep of one-epoch jobs.

Runs ``train.py -m`` with the basic launcher (every job in the same process) over ``--jobs``
one-epoch runs on the synthetic data set, W&B in offline mode by default, and records the
process's resident set size (VmRSS) after every job through a Hydra callback (:class:`RssPerJob`,
this file). Prints the RSS after job 20 and after the last job, and their ratio (target: <= 1.1).
``train.py`` tunes glibc malloc as in every run. Run:

    .venv/bin/python benchmarks/bench_sweep_memory.py [--jobs 200] [--logger wandb|csv]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

REPOSITORY = Path(__file__).resolve().parents[1]
REFERENCE_JOB = 20


def rss_kib() -> int:
    """This process's resident set size in KiB (Linux ``/proc/self/status``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


class RssPerJob(Callback):
    """Appends ``<job number> <RSS KiB>`` to ``path`` after every job of a multirun."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        with self.path.open("a") as handle:
            handle.write(f"{config.hydra.job.num} {rss_kib()}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--logger", default="wandb", choices=["wandb", "csv"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        record = Path(scratch) / "rss.txt"
        env = dict(os.environ)
        env.update(
            IMBLOSS_LOG_DIR=str(Path(scratch) / "logs"),
            IMBLOSS_DATA_DIR=str(Path(scratch) / "data"),
            WANDB_MODE="offline",
            WANDB_DIR=str(Path(scratch) / "wandb"),
            PYTHONPATH=os.pathsep.join(
                p for p in (str(Path(__file__).parent), env.get("PYTHONPATH")) if p
            ),
        )
        env.pop("WANDB_API_KEY", None)
        command = [
            sys.executable,
            str(REPOSITORY / "train.py"),
            "-m",
            "dataset=synthetic",
            "model=fmnist_cnn",
            "ir=10",
            "trainer.max_epochs=1",
            "trainer.enable_progress_bar=false",
            f"logger={args.logger}",
            f"seed=range({args.jobs})",
            "+hydra.callbacks.rss._target_=bench_sweep_memory.RssPerJob",
            f"+hydra.callbacks.rss.path={record}",
        ]
        started = time.perf_counter()
        subprocess.run(command, cwd=REPOSITORY, env=env, check=True, stdout=subprocess.DEVNULL)
        elapsed = time.perf_counter() - started
        rss = dict(tuple(map(int, line.split())) for line in record.read_text().splitlines())
    last = max(rss)
    reference = min(REFERENCE_JOB - 1, last)  # job numbers start at 0: the 20th job is 19
    print(f"{len(rss)} one-epoch jobs in one process, logger={args.logger}: {elapsed:.0f} s")
    for job in sorted({0, reference, len(rss) // 2, last}):
        print(f"  RSS after job {job + 1:4d}: {rss[job] / 1024:8.1f} MiB")
    print(f"RSS after the last / after the {reference + 1}th: {rss[last] / rss[reference]:.3f}")


if __name__ == "__main__":
    main()
