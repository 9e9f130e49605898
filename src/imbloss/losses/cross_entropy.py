"""Cross-entropy and its class-weighted forms: ``ce``, ``wce``, ``cb``.

``CE = -(1/N) sum_i log p_i`` (first source, Du et al. 2021, eq. (1)-(3), here as a mean), and
with class weights the weighted mean ``-sum_i w_{y_i} log p_i / sum_i w_{y_i}`` (eq. (4) with the
normalisation of ``torch.nn.functional.cross_entropy``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor

from imbloss.losses.base import ClassCountLoss
from imbloss.losses.registry import register_loss
from imbloss.losses.weights import (
    MINORITY_SCALE_GRID,
    effective_number_weights,
    inverse_frequency_weights,
)


@register_loss(
    "ce",
    label="CE",
    order=0,
    parameter_free=True,
    source="cross-entropy; Du et al. 2021, Sec. II-A, eq. (1)-(3)",
)
class CrossEntropyLoss(ClassCountLoss):
    """``-(1/N) sum_i log p_i``, or the weighted mean when ``class_weights`` is set."""

    def loss(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(logits, target, weight=self.class_weights_for(logits))


@register_loss(
    "wce",
    label="WCE-loss",
    order=1,
    parameter_free=False,
    grid={"scale": MINORITY_SCALE_GRID},
    source="weighted cross-entropy, alpha_j = 1/N_j; Du et al. 2021, Sec. II-B, eq. (4), Sec. IV-B",
)
class WeightedCrossEntropyLoss(CrossEntropyLoss):
    """``-sum_i alpha_{y_i} log p_i / sum_i alpha_{y_i}`` with ``alpha_j = 1/N_j``.

    ``scale`` multiplies only the weights of the classes below the mean count (Sec. IV-B), whose
    weight becomes ``scale/N_j``.
    """

    def __init__(self, class_counts: Sequence[int], scale: float = 1.0) -> None:
        super().__init__(class_counts)
        self.class_weights = inverse_frequency_weights(class_counts, scale)


@register_loss(
    "cb",
    label="CB",
    order=11,
    parameter_free=False,
    source="class-balanced cross-entropy, effective number of samples; Cui et al. 2019",
)
class ClassBalancedCrossEntropyLoss(CrossEntropyLoss):
    """Weighted-mean CE with ``w_j = (1-beta)/(1-beta^N_j)`` normalised to sum to C (Cui et al.)."""

    def __init__(self, class_counts: Sequence[int], beta: float = 0.9999) -> None:
        super().__init__(class_counts)
        self.class_weights = effective_number_weights(class_counts, beta)
