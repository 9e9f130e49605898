"""Label noise on the majority classes of a training split (``dataset.label_noise``).

For every majority class j (a class the protocol did not make minority) with ``N_j`` training
samples, ``round_half_up(fraction * N_j)`` of them, drawn without replacement, get a label drawn
uniformly from the ``C - 1`` other classes. The draws come from the dataset seed's own
``label_noise`` stream, so the subsample, the validation split and the training seed do not move
them; validation and test labels are never touched.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from imbloss.checks import checked_number
from imbloss.data.sampling import class_indices, round_half_up


def check_label_noise(fraction: object) -> float:
    """``fraction`` as a float in [0, 1]; ConfigError naming the value otherwise."""
    return checked_number(
        "dataset.label_noise",
        fraction,
        accepted="a number in [0, 1]",
        valid=lambda v: 0 <= v <= 1,
        problem="is out of range",
    )


def flip_majority_labels(
    targets: torch.Tensor,
    num_classes: int,
    minority_classes: Sequence[int],
    fraction: float,
    rng: np.random.Generator,
) -> tuple[torch.Tensor, list[int]]:
    """The noisy copy of ``targets`` and the number of labels flipped away from each class."""
    noisy = targets.clone()
    flipped = [0] * num_classes
    if fraction == 0:
        return noisy, flipped
    minority = set(minority_classes)
    for j, own in enumerate(class_indices(targets, num_classes)):
        if j in minority:
            continue
        count = round_half_up(fraction * len(own))
        chosen = rng.choice(own, size=count, replace=False)
        # uniform over the other classes: draw in [0, C-2] and skip j
        other = rng.integers(0, num_classes - 1, size=count)
        other = other + (other >= j)
        noisy[torch.from_numpy(chosen)] = torch.from_numpy(other).to(noisy.dtype)
        flipped[j] = count
    return noisy, flipped
