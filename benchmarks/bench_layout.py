"""What the channels-last weight layout saves (``imbloss.models.memory_layout``), in one process.

For each case, the network in PyTorch's default layout and a copy with channels-last weights
(``net.to(memory_format=torch.channels_last)``; inputs left as they are) run alternately, and the
median of ``--repeats`` timings of each is printed with their ratio (``> 1``: channels-last is
faster). The cases are what a run spends its time on:

- ``fmnist_cnn`` training step: batch of 500 (1x28x28), cross-entropy, backward, Adam;
- ``fmnist_cnn`` evaluation: the forward pass of 1,000 images (eval mode, no gradients);
- ``resnet18`` training step: batch of 64 (3x32x32), cross-entropy, backward, Adam.

Like ``train.py``, it runs with glibc malloc tuned (``imbloss.runtime``). Run:

    .venv/bin/python benchmarks/bench_layout.py [--device cuda] [--repeats 10]
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from imbloss.runtime import ensure_malloc_tuning

ensure_malloc_tuning()

import torch  # noqa: E402  (after the allocator set-up)
from torch import nn  # noqa: E402

from imbloss.models import CifarResNet18, FashionMNISTCNN, prefers_channels_last  # noqa: E402

WARMUP = 2
Case = Callable[[nn.Module], Callable[[], None]]  # a network -> one timed call


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model name and the threads PyTorch uses."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpuinfo = Path("/proc/cpuinfo")
    models = [line for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
    model = models[0].split(":", 1)[1].strip() if models else platform.processor()
    return f"{model}, {torch.get_num_threads()} threads"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_step(batch: int, shape: tuple[int, ...], classes: int, device: torch.device) -> Case:
    """One Adam step of cross-entropy on a fixed random batch."""
    x = torch.randn(batch, *shape, device=device)
    y = torch.randint(classes, (batch,), device=device)

    def make(net: nn.Module) -> Callable[[], None]:
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
        net.train()

        def step() -> None:
            optimizer.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(net(x), y).backward()
            optimizer.step()

        return step

    return make


def eval_forward(images: int, shape: tuple[int, ...], device: torch.device) -> Case:
    """The evaluation forward pass of ``images`` images in one batch."""
    x = torch.randn(images, *shape, device=device)

    def make(net: nn.Module) -> Callable[[], None]:
        net.eval()

        def forward() -> None:
            with torch.no_grad():
                net(x)

        return forward

    return make


def compare(net: nn.Module, case: Case, repeats: int, device: torch.device) -> tuple[float, float]:
    """Median seconds of ``case`` with the default layout and with channels-last weights, the
    two timed alternately so that a change of load falls on both."""
    calls = {
        "default": case(copy.deepcopy(net).to(device)),
        "channels_last": case(copy.deepcopy(net).to(device, memory_format=torch.channels_last)),
    }
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    for index in range(WARMUP + repeats):
        for name, call in calls.items():
            synchronize(device)
            start = time.perf_counter()
            call()
            synchronize(device)
            if index >= WARMUP:
                seconds[name].append(time.perf_counter() - start)
    return statistics.median(seconds["default"]), statistics.median(seconds["channels_last"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per layout")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    fmnist = FashionMNISTCNN((1, 28, 28), 10)
    cases = {
        "fmnist_cnn train step (batch 500)": (fmnist, train_step(500, (1, 28, 28), 10, device)),
        "fmnist_cnn eval forward (1,000 images)": (fmnist, eval_forward(1000, (1, 28, 28), device)),
        "resnet18 train step (batch 64)": (
            CifarResNet18((3, 32, 32), 10),
            train_step(64, (3, 32, 32), 10, device),
        ),
    }
    preferred = "channels-last" if prefers_channels_last(device) else "default"
    print(f"torch {torch.__version__}, {device}: {device_name(device)}")
    print(f"median of {args.repeats} timings per layout; imbloss uses {preferred} here")
    print(f"{'case':<40s} {'default':>9s} {'ch-last':>9s} {'ratio':>6s}")
    for title, (net, case) in cases.items():
        default, channels_last = compare(net, case, args.repeats, device)
        print(f"{title:<40s} {default:8.3f}s {channels_last:8.3f}s {default / channels_last:6.3f}")


if __name__ == "__main__":
    main()
