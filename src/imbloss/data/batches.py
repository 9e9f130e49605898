"""In-memory batch iteration over uint8 image tensors (no per-sample Python or PIL work)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch


class TensorBatches:
    """Yields `(images[idx], targets[idx])` batches of a split held as tensors.

    With `shuffle`, each pass draws a fresh permutation from `generator` (seeded once), so epochs
    differ from each other yet the whole sequence is reproducible. The last batch may be smaller.
    Batches come out on the tensors' own device (uint8 images; the DataModule normalises them).
    """

    def __init__(
        self,
        images: torch.Tensor,
        targets: torch.Tensor,
        batch_size: int,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        if len(images) != len(targets):
            raise ValueError(f"{len(images)} images but {len(targets)} targets")
        if shuffle and generator is None:
            raise ValueError("shuffle needs a seeded torch.Generator")
        self.images = images
        self.targets = targets
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator

    def __len__(self) -> int:
        return math.ceil(len(self.targets) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        count = len(self.targets)
        if self.shuffle:
            order = torch.randperm(count, generator=self.generator).to(self.images.device)
        else:
            order = torch.arange(count, device=self.images.device)
        for start in range(0, count, self.batch_size):
            positions = order[start : start + self.batch_size]
            yield self.images[positions], self.targets[positions]
