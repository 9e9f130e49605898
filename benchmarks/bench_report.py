"""What reading runs costs the report, on the runs committed in this repository.

``load_runs`` reads each run folder's config, ``metrics.json`` and ``predictions.npz`` and computes
the AUC of the predicted labels from the predictions; every table, plot and the results page start
from it. This times it on the committed campaign (``results/fmnist_step``) and tuning
(``results/tuning``) folders, for the selected and the last weights, and separately the share of
the predictions: reading and expanding ``predictions.npz`` and the AUC of predicted labels. It
prints wall time and the process's CPU time (what it costs on an idle core; on a shared machine
the wall time also holds the waits). Run:

    .venv/bin/python benchmarks/bench_report.py
"""

from __future__ import annotations

import time
from pathlib import Path

from imbloss.metrics import hard_prediction_auc
from imbloss.report import load_runs
from imbloss.report.runs import find_run_dirs
from imbloss.runs.layout import PREDICTION_KEYS, RunFolder
from imbloss.runs.readers import read_predictions

ROOTS = (Path("results/fmnist_step"), Path("results/tuning"))


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(start: tuple[float, float]) -> tuple[float, float]:
    wall, cpu = _clock()
    return wall - start[0], cpu - start[1]


def predictions_share(root: Path) -> tuple[int, float, float, float, float]:
    """(files, wall s, CPU s of reading every ``predictions.npz`` below ``root``, wall s, CPU s of
    the AUC of predicted labels for both weight sets on both test sets)."""
    files = [RunFolder(d).predictions for d in find_run_dirs(root)]
    files = [path for path in files if path.is_file()]
    start = _clock()
    loaded = [read_predictions(path) for path in files]
    read_wall, read_cpu = _since(start)
    start = _clock()
    for arrays in loaded:
        for target_key, probs_key in PREDICTION_KEYS.values():
            hard_prediction_auc(arrays[probs_key], arrays[target_key])
    return len(files), read_wall, read_cpu, *_since(start)


def main() -> None:
    for root in ROOTS:
        if not root.is_dir():
            print(f"{root}: absent, skipped")
            continue
        for figures in ("selected", "last"):
            start = _clock()
            runs = load_runs(root, figures=figures)
            wall, cpu = _since(start)
            print(
                f"{root} load_runs(figures={figures}): {len(runs)} runs, {wall:.2f} s wall, "
                f"{cpu:.2f} s CPU, {1000 * wall / len(runs):.1f} ms a run"
            )
        files, read_wall, read_cpu, auc_wall, auc_cpu = predictions_share(root)
        print(
            f"{root} predictions of {files} runs: reading {read_wall:.2f} s wall, "
            f"{read_cpu:.2f} s CPU; 4 AUCs of predicted labels a run {auc_wall:.2f} s wall, "
            f"{auc_cpu:.2f} s CPU"
        )


if __name__ == "__main__":
    main()
