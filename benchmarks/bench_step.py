"""The ``fmnist_cnn`` training step against the eager network it replaced, side by side.

``eager`` is the network as it was before its channels-last layers (PyTorch's ``nn.MaxPool2d``
and ``nn.Flatten``, ReLU before the pooling); ``imbloss`` is today's ``FashionMNISTCNN``. Both get
channels-last weights (as imbloss does on the CPU) and train on a fixed random batch of 500 with
cross-entropy and Adam; their steps alternate (``--repeats`` pairs after a warm-up) and the
table gives the images/s of each at the median and at the fastest step, and the ratios, per
precision and thread count. Then the
operators of ``--profile-steps`` bf16 steps of today's network (self CPU time, 1 process with the
largest thread count). Like ``train.py`` it runs with glibc malloc tuned. Run:

    .venv/bin/python benchmarks/bench_step.py [--threads 1,2] [--repeats 20]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

from imbloss.runtime import ensure_malloc_tuning

ensure_malloc_tuning()

import torch  # noqa: E402  (after the allocator set-up)
from torch import nn  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cpu_info import describe_cpu  # noqa: E402
from imbloss.models import FashionMNISTCNN, use_preferred_layout  # noqa: E402

BATCH = 500
WARMUP = 3
PRECISIONS = ("32-true", "bf16-mixed")


def eager_network(net: FashionMNISTCNN) -> nn.Module:
    """A copy of ``net`` with PyTorch's own layers, in the order the network had before its
    channels-last layers: Conv-ReLU-Conv-ReLU-MaxPool-Flatten."""
    eager = copy.deepcopy(net)
    first, _, second, *_ = eager.features
    eager.features = nn.Sequential(
        first, nn.ReLU(), second, nn.ReLU(), nn.MaxPool2d(2), nn.Flatten()
    )
    return eager


def training_step(net: nn.Module, precision: str) -> Callable[[], None]:
    """One Adam step of cross-entropy on a fixed random batch, in ``precision``."""
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    x, y = torch.randn(BATCH, 1, 28, 28), torch.randint(10, (BATCH,))
    bf16 = precision == "bf16-mixed"

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext():
            logits = net(x)
        nn.functional.cross_entropy(logits.float(), y).backward()
        optimizer.step()

    return step


def networks() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    net = use_preferred_layout(FashionMNISTCNN((1, 28, 28), 10), torch.device("cpu"))
    return {"eager": eager_network(net), "imbloss": net}


def compare(precision: str, threads: int, repeats: int) -> dict[str, tuple[float, float]]:
    """Images/s of each network's step, the steps alternating: of the median step and of the
    fastest (on a machine shared with other work, the fastest is the step nothing interrupted)."""
    torch.set_num_threads(threads)
    steps = {name: training_step(net, precision) for name, net in networks().items()}
    seconds: dict[str, list[float]] = {name: [] for name in steps}
    for index in range(WARMUP + repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            if index >= WARMUP:
                seconds[name].append(time.perf_counter() - start)
    return {
        name: (BATCH / statistics.median(values), BATCH / min(values))
        for name, values in seconds.items()
    }


def op_breakdown(threads: int, steps: int) -> str:
    """The operators of ``steps`` bf16 steps of today's network, by self CPU time."""
    torch.set_num_threads(threads)
    step = training_step(networks()["imbloss"], "bf16-mixed")
    for _ in range(WARMUP):
        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=14)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--repeats", type=int, default=20, help="timed steps per network")
    parser.add_argument("--profile-steps", type=int, default=10)
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    print(describe_cpu())
    print(
        f"torch {torch.__version__}; fmnist_cnn train step, batch {BATCH}, channels-last weights; "
        f"median of {args.repeats} alternated steps; load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'precision':<11s} {'threads':>7s} {'step':>7s} {'eager img/s':>11s} "
          f"{'imbloss img/s':>13s} {'ratio':>6s}")  # fmt: skip
    for count in threads:
        for precision in PRECISIONS:
            rates = compare(precision, count, args.repeats)
            for index, kind in enumerate(("median", "fastest")):
                eager, ours = rates["eager"][index], rates["imbloss"][index]
                print(
                    f"{precision:<11s} {count:7d} {kind:>7s} {eager:11.0f} {ours:13.0f} "
                    f"{ours / eager:6.2f}"
                )
    print(f"\nbf16 step of today's network, {max(threads)} thread(s), {args.profile_steps} steps:")
    print(op_breakdown(max(threads), args.profile_steps))


if __name__ == "__main__":
    main()
