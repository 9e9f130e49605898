"""Class weights computed from the training-set class counts N_j.

- Inverse frequency (first source, Du et al. 2021, Sec. II-B and IV-B): ``alpha_j = 1/N_j``, and
  the tuned factor ``scale`` multiplies the weights of the minority classes only, i.e. the classes
  whose count is below the mean class count (Sec. IV-B keeps the majority weights at 1/N_j).
- Effective number (Cui et al. 2019, "Class-balanced loss based on effective number of samples"):
  ``w_j = (1 - beta) / (1 - beta^N_j)``, normalised so that the C weights sum to C.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from imbloss.losses.base import checked_hparam

# Sec. IV-B: alpha in [0.1/N_j, 1/N_j] step 0.1/N_j and [1/N_j, 10/N_j] step 1/N_j for the
# minority classes, i.e. the factor on 1/N_j takes these 19 values.
MINORITY_SCALE_GRID: tuple[float, ...] = tuple(round(0.1 * k, 1) for k in range(1, 11)) + tuple(
    float(k) for k in range(2, 11)
)


def below_mean_count(class_counts: Sequence[int]) -> Tensor:
    """Boolean mask [C] of the minority classes: those whose count is below the mean count."""
    counts = torch.as_tensor(class_counts, dtype=torch.float64)
    return counts < counts.mean()


def inverse_frequency_weights(class_counts: Sequence[int], scale: float) -> Tensor:
    """``alpha_j = 1/N_j``, times ``scale`` for the classes below the mean count; float32 [C]."""
    scale = checked_hparam("scale", scale, accepted="a number > 0", valid=lambda v: v > 0)
    counts = torch.as_tensor(class_counts, dtype=torch.float64)
    factor = torch.where(below_mean_count(class_counts), scale, 1.0)
    return (factor / counts).to(torch.float32)


def effective_number_weights(class_counts: Sequence[int], beta: float) -> Tensor:
    """``w_j = (1-beta) / (1-beta^N_j)``, the inverse effective number, rescaled to sum to C."""
    beta = checked_hparam("beta", beta, accepted="a number in [0, 1)", valid=lambda v: 0 <= v < 1)
    counts = torch.as_tensor(class_counts, dtype=torch.float64)
    weights = (1.0 - beta) / (1.0 - torch.pow(torch.tensor(beta, dtype=torch.float64), counts))
    return (weights * len(counts) / weights.sum()).to(torch.float32)
