"""What the 95 % bootstrap intervals cost one run (Fashion-MNIST step IR=100 shapes).

A run judges two weight sets (the selected and the last) on two test sets: the protocol's (5,050
images at IR=100: 10 per minority class, 1,000 per majority class) and the whole one (10,000).
This times exactly that with generated predictions: drawing the replicates of each test set once
and four ``ci95`` calls, with 1,000 resamples, on the CPU and, when there is one, on a CUDA
device (replicates held and computed there). It prints wall time and the process's CPU time
(what it costs on an idle core; on a shared machine the wall time also holds the waits). Like
``train.py``, it runs with glibc malloc tuned (`imbloss.runtime`). Run:

    .venv/bin/python benchmarks/bench_intervals.py
"""

from __future__ import annotations

import time

from imbloss.runtime import ensure_malloc_tuning

ensure_malloc_tuning()

import torch  # noqa: E402  (after the allocator set-up)

from imbloss.intervals import BOOTSTRAP_RESAMPLES, StratifiedBootstrap  # noqa: E402

TEST_SETS = {"protocol test (IR=100)": [10, 1000] * 5, "whole test": [1000] * 10}


def predictions(counts: list[int], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets and softmax outputs of a plausible classifier, rounded to create score ties."""
    generator = torch.Generator().manual_seed(seed)
    target = torch.cat([torch.full((n,), j) for j, n in enumerate(counts)])
    logits = torch.randn(len(target), len(counts), generator=generator)
    logits += 2.5 * torch.nn.functional.one_hot(target, len(counts))
    probs = (torch.softmax(logits, 1) * 1000).round() / 1000
    return target, probs / probs.sum(1, keepdim=True)


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_run(device: torch.device) -> None:
    """Draw both test sets' replicates and judge both weight sets on ``device``; print times."""
    total = cpu_total = 0.0
    for name, counts in TEST_SETS.items():
        target, selected = predictions(counts, 0)
        _, last = predictions(counts, 1)
        synchronize(device)
        start, cpu_start = time.perf_counter(), time.process_time()
        bootstrap = StratifiedBootstrap(target, seed=0, device=device)
        synchronize(device)
        drawn = time.perf_counter() - start
        intervals = [bootstrap.ci95(selected), bootstrap.ci95(last)]
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        total += elapsed
        cpu_total += cpu
        print(f"{device} {name}: {len(target)} samples, replicates {drawn:.2f} s, both weight "
              f"sets {elapsed:.2f} s wall, {cpu:.2f} s CPU; selected {intervals[0]}")  # fmt: skip
    print(f"{device} per run: {total:.2f} s wall, {cpu_total:.2f} s CPU")


def main() -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{BOOTSTRAP_RESAMPLES} resamples")  # fmt: skip
    time_run(torch.device("cpu"))
    if torch.cuda.is_available():
        time_run(torch.device("cuda"))  # the first run also pays CUDA's start-up


if __name__ == "__main__":
    main()
