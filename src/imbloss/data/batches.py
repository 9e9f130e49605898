"""In-memory batch iteration over uint8 image tensors (no per-sample Python or PIL work).

The order of an epoch's samples comes from an *index sampler*: an object with
``epoch_indices(epoch) -> LongTensor`` that depends on the training seed and the epoch alone, so
that any epoch can be reproduced without replaying the ones before it (a resumed run, or one member
of a stacked group, gets exactly the batches a separate, uninterrupted run would get).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator

import numpy as np
import torch


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded from ``(seed, epoch)`` through numpy's ``SeedSequence``."""
    state = np.random.SeedSequence([int(seed), int(epoch)]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


class EpochSampler(ABC):
    """The positions (into a split) that each epoch visits, in order; repeats are allowed.

    ``num_samples`` is the length of every epoch's index tensor (fixed, so the number of steps per
    epoch is known before the epoch starts). ``set_epoch`` is called by Lightning at the start of
    every training epoch (it looks for ``loader.sampler.set_epoch``), also after a resume.
    """

    num_samples: int
    epoch: int = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    @abstractmethod
    def epoch_indices(self, epoch: int) -> torch.Tensor:
        """The int64 positions visited in ``epoch``, a function of the seed and ``epoch`` alone."""


class ShuffleSampler(EpochSampler):
    """Every sample once per epoch, in a fresh permutation drawn from ``(seed, epoch)``."""

    def __init__(self, num_samples: int, seed: int) -> None:
        self.num_samples = num_samples
        self.seed = int(seed)

    def epoch_indices(self, epoch: int) -> torch.Tensor:
        return torch.randperm(self.num_samples, generator=epoch_generator(self.seed, epoch))


class TensorBatches:
    """Yields ``(images[idx], targets[idx])`` batches of a split held as tensors.

    Without a sampler the split is visited in order (evaluation). With one, each pass visits
    ``sampler.epoch_indices(sampler.epoch)``, so the whole sequence is reproducible and any epoch
    can be replayed. The last batch may be smaller. Batches
    come out on the tensors' own device (uint8 images; the DataModule normalises them).

    Sharded over ``world_size`` processes (data-parallel training), process ``rank`` gets, in
    training, part ``rank`` of every global batch of ``batch_size`` (``torch.tensor_split``: parts
    differ by at most one sample, no sample twice), and in evaluation its contiguous part of the
    split, so the parts gathered in rank order are the split in order.
    """

    batch_sampler = None  # read by Lightning beside ``sampler``: batches are cut here, not there

    def __init__(
        self,
        images: torch.Tensor,
        targets: torch.Tensor,
        batch_size: int,
        sampler: EpochSampler | None = None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if len(images) != len(targets):
            raise ValueError(f"{len(images)} images but {len(targets)} targets")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not one of world_size={world_size} processes")
        self.images = images
        self.targets = targets
        self.batch_size = batch_size
        self.sampler = sampler
        self.rank = rank
        self.world_size = world_size

    def set_epoch(self, epoch: int) -> None:
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)

    def epoch_indices(self) -> torch.Tensor:
        """The positions this epoch visits, in order, on the tensors' device."""
        if self.sampler is None:
            return torch.arange(len(self.targets), device=self.images.device)
        return self.sampler.epoch_indices(self.sampler.epoch).to(self.images.device)

    def _shard(self, positions: torch.Tensor) -> torch.Tensor:
        return torch.tensor_split(positions, self.world_size)[self.rank]

    def index_batches(self) -> Iterator[torch.Tensor]:
        """This epoch's batches as index tensors (what a stacked trainer gathers per member)."""
        order = self.epoch_indices()
        if self.sampler is None:
            order = self._shard(order)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            yield batch if self.sampler is None else self._shard(batch)

    def __len__(self) -> int:
        if self.sampler is None:
            return math.ceil(len(self._shard(torch.arange(len(self.targets)))) / self.batch_size)
        return math.ceil(self.sampler.num_samples / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for positions in self.index_batches():
            yield self.images[positions], self.targets[positions]
