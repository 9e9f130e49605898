"""Training throughput by numeric precision and by layout of jobs and threads, side by side.

The results campaign's choices (docs/results.md): float32 or bf16 autocast, and one job with
every core or one job per core. Each case trains ``fmnist_cnn`` (channels-last weights, as
imbloss does on the CPU) on a fixed random batch of 500 with cross-entropy and Adam, for
``--seconds`` of wall time after a warm-up, and counts images:

- ``1 process x N threads``: one job using all N cores;
- ``N processes x 1 thread``: N jobs side by side (started together, timed over the same
  window), images summed.

Cases run one after another in alternation (``--rounds``) so that a change of load falls on all,
and the table gives the median images/s of each with its ratio to float32 in one process. Like
``train.py``, it runs with glibc malloc tuned. Run:

    .venv/bin/python benchmarks/bench_precision_layout.py [--seconds 20] [--rounds 2]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time
from contextlib import nullcontext

from imbloss.runtime import ensure_malloc_tuning

ensure_malloc_tuning()

import torch  # noqa: E402  (after the allocator set-up)
from torch import nn  # noqa: E402

from imbloss.models import FashionMNISTCNN  # noqa: E402
from imbloss.multirun.devices import available_cores  # noqa: E402

BATCH = 500
WARMUP_STEPS = 3
PRECISIONS = ("32-true", "bf16-mixed")


def images_per_second(precision: str, threads: int, seconds: float, start_at: float) -> float:
    """Train steps for ``seconds`` from ``start_at`` (a ``time.time()``); images per second."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = FashionMNISTCNN((1, 28, 28), 10).to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    x, y = torch.randn(BATCH, 1, 28, 28), torch.randint(10, (BATCH,))
    autocast = (
        torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16-mixed" else nullcontext()
    )

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            logits = net(x)
        nn.functional.cross_entropy(logits.float(), y).backward()
        optimizer.step()

    for _ in range(WARMUP_STEPS):
        step()
    while time.time() < start_at:
        time.sleep(0.01)
    steps, begin = 0, time.perf_counter()
    while time.perf_counter() - begin < seconds:
        step()
        steps += 1
    return steps * BATCH / (time.perf_counter() - begin)


def _worker(precision: str, seconds: float, start_at: float, queue: mp.Queue) -> None:
    queue.put(images_per_second(precision, 1, seconds, start_at))


def side_by_side(precision: str, processes: int, seconds: float) -> float:
    """Images/s summed over ``processes`` single-thread jobs timed over the same window."""
    context = mp.get_context("spawn")
    queue = context.Queue()
    start_at = time.time() + 10.0  # after every process has started and warmed up
    workers = [
        context.Process(target=_worker, args=(precision, seconds, start_at, queue))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    rates = [queue.get() for _ in workers]
    for worker in workers:
        worker.join()
    return sum(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="timed seconds per case")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of all cases")
    args = parser.parse_args()
    cores = available_cores()
    cases = {
        (precision, layout): None
        for layout in (f"1 process x {cores} threads", f"{cores} processes x 1 thread")
        for precision in PRECISIONS
    }
    rates: dict[tuple[str, str], list[float]] = {case: [] for case in cases}
    for _ in range(args.rounds):
        for precision, layout in cases:
            if layout.startswith("1 process"):
                rate = images_per_second(precision, cores, args.seconds, time.time())
            else:
                rate = side_by_side(precision, cores, args.seconds)
            rates[(precision, layout)].append(rate)
    print(
        f"torch {torch.__version__}, {cores} cores, fmnist_cnn train step, batch {BATCH}, "
        f"channels-last; median of {args.rounds} x {args.seconds:g} s; load average "
        f"{os.getloadavg()[0]:.1f}"
    )
    baseline = statistics.median(rates[("32-true", f"1 process x {cores} threads")])
    print(f"{'precision':<11s} {'layout':<24s} {'images/s':>9s} {'ratio':>6s}")
    for (precision, layout), values in rates.items():
        median = statistics.median(values)
        print(f"{precision:<11s} {layout:<24s} {median:9.0f} {median / baseline:6.2f}")


if __name__ == "__main__":
    main()
