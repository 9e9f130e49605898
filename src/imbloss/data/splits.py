"""Stratified validation split carved from the (already imbalanced) training split.

Rule, per class j with n_j training samples: `v_j = round_half_up(val_fraction · n_j)`, then clamped
so that at least 1 sample stays in train and, when n_j >= 2, at least 1 goes to validation:
`v_j = min(max(v_j, 1), n_j − 1)` for n_j >= 2, and `v_j = 0` for n_j = 1. The validation split thus
has the training split's imbalance; it serves model selection and tuning, never the test split.
"""

from __future__ import annotations

import numpy as np
import torch

from imbloss.data.sampling import choose, class_indices, round_half_up
from imbloss.errors import ConfigError


def check_val_fraction(val_fraction: float) -> None:
    """ConfigError unless 0 < val_fraction < 1."""
    if not 0 < val_fraction < 1:
        raise ConfigError(
            f"val_fraction={val_fraction} is out of range; accepted: 0 < val_fraction < 1"
        )


def validation_count(class_size: int, val_fraction: float) -> int:
    """How many of a class's `class_size` training samples go to validation (rule above)."""
    if class_size < 2:
        return 0
    return min(max(round_half_up(val_fraction * class_size), 1), class_size - 1)


def stratified_split(
    targets: torch.Tensor, num_classes: int, val_fraction: float, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions into `targets` for (train, validation), each ascending, drawn per class."""
    check_val_fraction(val_fraction)
    validation = [
        choose(indices, validation_count(len(indices), val_fraction), rng)
        for indices in class_indices(targets, num_classes)
    ]
    val_positions = np.sort(np.concatenate(validation))
    train_mask = np.ones(len(targets), dtype=bool)
    train_mask[val_positions] = False
    return torch.from_numpy(np.flatnonzero(train_mask)), torch.from_numpy(val_positions).long()
