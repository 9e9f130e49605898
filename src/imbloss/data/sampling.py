"""Seeded, per-class subsampling shared by the imbalance protocols and the validation split."""

from __future__ import annotations

import math

import numpy as np
import torch

STREAMS = {"train": 0, "test": 1, "val": 2, "label_noise": 3}
"""One independent random stream per purpose, so that e.g. the train-only `exp` protocol draws the
same training indices whatever happens to the test split."""


def seeded_rng(seed: int, purpose: str) -> np.random.Generator:
    """numpy Generator seeded by the dataset seed alone (never the training seed) and `purpose`."""
    return np.random.default_rng([int(seed), STREAMS[purpose]])


def round_half_up(value: float) -> int:
    """`floor(value + 0.5)`: 0.5 rounds up (Python's `round` rounds half to even)."""
    return math.floor(value + 0.5)


def class_indices(labels: torch.Tensor, num_classes: int) -> list[np.ndarray]:
    """For each class j < num_classes, the positions of its samples in `labels`, ascending."""
    array = labels.numpy()
    order = np.argsort(array, kind="stable")
    bounds = np.searchsorted(array[order], np.arange(num_classes + 1))
    return [order[bounds[j] : bounds[j + 1]] for j in range(num_classes)]


def choose(indices: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` of `indices` drawn without replacement, returned in ascending order."""
    return np.sort(rng.choice(indices, size=count, replace=False))
