"""How much of a training epoch the data path costs (Fashion-MNIST, step IR=100, fmnist_cnn).

Times one epoch over the training split of `ImbalancedDataModule("fashion_mnist", ir=100)` in a
plain loop (batch 500): forward + backward + Adam step of `FashionMNISTCNN`, recording separately
the time spent waiting for each batch (indexing the uint8 tensors + normalisation). Then times the
data path alone over the same epoch, and the data path of one epoch of every training sampler
(`imbloss.data.samplers`: drawing the epoch's indices, then indexing + normalising). Like
`train.py`, it runs with glibc malloc tuned (`imbloss.runtime`). Run:

    .venv/bin/python benchmarks/bench_data.py [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from imbloss.data import ImbalancedDataModule
from imbloss.data.samplers import available_samplers
from imbloss.models import FashionMNISTCNN
from imbloss.runtime import ensure_malloc_tuning

REPOSITORY = Path(__file__).resolve().parents[1]


def timed_batches(
    datamodule: ImbalancedDataModule, waits: list[float]
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The training batches, transformed as in training; appends each batch's wait to `waits`."""
    batches = iter(datamodule.train_dataloader())
    while True:
        start = time.perf_counter()
        try:
            batch = datamodule.transform_batch(next(batches), training=True)
        except StopIteration:
            return
        waits.append(time.perf_counter() - start)
        yield batch


def train_epoch(datamodule: ImbalancedDataModule, network: torch.nn.Module) -> tuple[float, float]:
    """Seconds for one training epoch and, of those, seconds spent waiting for batches."""
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
    waits: list[float] = []
    start = time.perf_counter()
    for images, targets in timed_batches(datamodule, waits):
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(network(images), targets).backward()
        optimizer.step()
    return time.perf_counter() - start, sum(waits)


def data_epoch(datamodule: ImbalancedDataModule) -> float:
    """Seconds to produce every training batch of one epoch with no model work."""
    waits: list[float] = []
    start = time.perf_counter()
    for _ in timed_batches(datamodule, waits):
        pass
    return time.perf_counter() - start


def sampler_epochs(data_dir: str, batch_size: int) -> None:
    """Per sampler: samples and steps per epoch, seconds to draw the indices, data path seconds."""
    for name in available_samplers():
        options = {"max_epochs": 2, "start": 0.5} if name == "drs" else {}
        datamodule = ImbalancedDataModule(
            "fashion_mnist",
            data_dir,
            ir=100,
            batch_size=batch_size,
            sampler={"name": name, **options},
        )
        datamodule.prepare_data()
        datamodule.setup("fit")
        sampler = datamodule.train_sampler(0)
        start = time.perf_counter()
        sampler.epoch_indices(1)  # drs: its class-balanced phase
        draw_seconds = time.perf_counter() - start
        batches = datamodule.train_dataloader()
        batches.set_epoch(1)
        start = time.perf_counter()
        for batch in batches:
            datamodule.transform_batch(batch, training=True)
        data_seconds = time.perf_counter() - start
        print(
            f"sampler {name:15s} {sampler.num_samples:6d} samples, {len(batches):4d} steps; "
            f"indices {1000 * draw_seconds:6.1f} ms, data path {data_seconds:.3f} s per epoch"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_dir = os.environ.get("IMBLOSS_DATA_DIR", str(REPOSITORY / "data"))
    parser.add_argument("--data-dir", default=default_dir)
    parser.add_argument("--batch-size", type=int, default=500)
    arguments = parser.parse_args()

    torch.manual_seed(0)
    start = time.perf_counter()
    datamodule = ImbalancedDataModule(
        "fashion_mnist", arguments.data_dir, ir=100, batch_size=arguments.batch_size
    )
    datamodule.prepare_data()
    datamodule.setup("fit")
    setup_seconds = time.perf_counter() - start
    network = FashionMNISTCNN(input_shape=datamodule.input_shape, num_classes=10).train()
    warm_up = next(timed_batches(datamodule, []))
    network(warm_up[0]).sum().backward()

    epoch_seconds, wait_seconds = train_epoch(datamodule, network)
    data_seconds = data_epoch(datamodule)
    images = sum(datamodule.train_class_counts)
    batches = len(datamodule.train_dataloader())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device cpu")
    print(f"setup (load + protocol + split + stats): {setup_seconds:.2f} s")
    print(f"training split: {images} images, {batches} batches of {arguments.batch_size}")
    print(f"train epoch (fmnist_cnn fwd+bwd+Adam): {epoch_seconds:.2f} s")
    print(
        f"  waiting for batches: {wait_seconds:.3f} s "
        f"({100 * wait_seconds / epoch_seconds:.2f} % of the epoch)"
    )
    print(
        f"data path alone (index + normalise): {data_seconds:.3f} s per epoch, "
        f"{images / data_seconds:,.0f} images/s"
    )
    sampler_epochs(arguments.data_dir, arguments.batch_size)


if __name__ == "__main__":
    ensure_malloc_tuning()
    main()
