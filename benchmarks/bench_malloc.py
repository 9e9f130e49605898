"""Epoch time of the Fashion-MNIST CNN on the CPU with and without imbloss's glibc malloc tuning.

Each variant runs in a fresh interpreter (glibc reads the variables at start-up): one epoch of
forward + backward + Adam over 30,300 images of 1x28x28 (the size of the Fashion-MNIST IR=100
training split), batch 500, after one warm-up epoch. Prints the wall time and the user and system
CPU time.

    python benchmarks/bench_malloc.py [--epochs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

from imbloss.runtime import MALLOC_SETTINGS, OPT_OUT_VARIABLE

TRAIN_SIZE = 30_300
BATCH_SIZE = 500


def one_variant(epochs: int) -> dict[str, float]:
    """Time ``epochs`` epochs after a warm-up one; runs in the child interpreter."""
    import torch

    from imbloss.models import FashionMNISTCNN

    torch.manual_seed(0)
    images = torch.randn(TRAIN_SIZE, 1, 28, 28)
    labels = torch.randint(0, 10, (TRAIN_SIZE,))
    net = FashionMNISTCNN(input_shape=(1, 28, 28), num_classes=10)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)

    def epoch() -> None:
        for start in range(0, TRAIN_SIZE, BATCH_SIZE):
            x, y = images[start : start + BATCH_SIZE], labels[start : start + BATCH_SIZE]
            optimizer.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(net(x), y).backward()
            optimizer.step()

    epoch()
    usage0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(epochs):
        epoch()
    usage1, wall1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    return {
        "epoch_s": (wall1 - wall0) / epochs,
        "user_s": (usage1.ru_utime - usage0.ru_utime) / epochs,
        "sys_s": (usage1.ru_stime - usage0.ru_stime) / epochs,
    }


def run_child(tuned: bool, epochs: int) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k not in MALLOC_SETTINGS}
    env[OPT_OUT_VARIABLE] = "1" if tuned else "0"
    if tuned:
        env.update(MALLOC_SETTINGS)
    out = subprocess.run(
        [sys.executable, __file__, "--child", "--epochs", str(epochs)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one_variant(args.epochs)))
        return
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores")
    print(f"{'variant':<22}{'epoch (s)':>10}{'user (s)':>10}{'sys (s)':>10}{'sys share':>11}")
    for tuned in (False, True):
        figures = run_child(tuned, args.epochs)
        share = figures["sys_s"] / (figures["user_s"] + figures["sys_s"])
        name = "malloc tuned" if tuned else "glibc defaults"
        print(
            f"{name:<22}{figures['epoch_s']:>10.2f}{figures['user_s']:>10.2f}"
            f"{figures['sys_s']:>10.2f}{share:>10.0%}"
        )


if __name__ == "__main__":
    main()
