"""Cross-entropy and its class-weighted forms: ``ce``, ``wce``, ``cb``.

``CE = -(1/N) sum_i log p_i`` (first source, Du et al. 2021, eq. (1)-(3), here as a mean), and
with class weights one of two reductions (``reduction``):

- ``weighted_mean`` (default): ``-sum_i w_{y_i} log p_i / sum_i w_{y_i}`` (eq. (4) with the
  normalisation of ``torch.nn.functional.cross_entropy``, and of LDAM-DRW's code);
- ``mean``: ``-(1/N) sum_i w_{y_i} log p_i`` with the weights rescaled to sum to C, as the code of
  Cui et al. 2019 (richardaecn/class-balanced-loss: TensorFlow's ``softmax_cross_entropy`` with
  per-sample weights, whose default reduction divides by the number of non-zero weights, N).
  Per batch the two differ by the factor ``N / sum_i w_{y_i}`` (the C-normalised weights), which
  varies from batch to batch with its class mix.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor

from imbloss.errors import ConfigError
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


REDUCTIONS = ("weighted_mean", "mean")


class WeightedCrossEntropy(CrossEntropyLoss):
    """Cross-entropy with the class weights ``weights`` and the ``reduction`` of the module
    docstring (for ``mean`` the weights are rescaled to sum to C)."""

    def __init__(self, class_counts: Sequence[int], weights: Tensor, reduction: str) -> None:
        super().__init__(class_counts)
        if reduction not in REDUCTIONS:
            raise ConfigError(
                f"loss hyperparameter reduction={reduction!r} is invalid; accepted: "
                f"{', '.join(REDUCTIONS)}"
            )
        self.reduction = reduction
        if reduction == "mean":
            weights = weights * (self.num_classes / weights.sum())
        self.class_weights = weights

    def loss(self, logits: Tensor, target: Tensor) -> Tensor:
        weight = self.class_weights_for(logits)
        if self.reduction == "weighted_mean":
            return F.cross_entropy(logits, target, weight=weight)
        return F.cross_entropy(logits, target, weight=weight, reduction="sum") / len(target)


@register_loss(
    "wce",
    label="WCE-loss",
    order=1,
    parameter_free=False,
    grid={"scale": MINORITY_SCALE_GRID},
    source="weighted cross-entropy, alpha_j = 1/N_j; Du et al. 2021, Sec. II-B, eq. (4), Sec. IV-B",
)
class WeightedCrossEntropyLoss(WeightedCrossEntropy):
    """``-sum_i alpha_{y_i} log p_i / sum_i alpha_{y_i}`` with ``alpha_j = 1/N_j``
    (``reduction="mean"``: ``/ N``, the alphas rescaled to sum to C).

    ``scale`` multiplies only the weights of the classes below the mean count (Sec. IV-B), whose
    weight becomes ``scale/N_j``.
    """

    def __init__(
        self, class_counts: Sequence[int], scale: float = 1.0, reduction: str = "weighted_mean"
    ) -> None:
        super().__init__(class_counts, inverse_frequency_weights(class_counts, scale), reduction)


@register_loss(
    "cb",
    label="CB",
    order=11,
    parameter_free=False,
    source="class-balanced cross-entropy, effective number of samples; Cui et al. 2019",
)
class ClassBalancedCrossEntropyLoss(WeightedCrossEntropy):
    """Softmax CE with ``w_j = (1-beta)/(1-beta^N_j)`` normalised to sum to C (Cui et al. 2019);
    the weighted mean by default, ``reduction="mean"`` divides by N as their code does."""

    def __init__(
        self, class_counts: Sequence[int], beta: float = 0.9999, reduction: str = "weighted_mean"
    ) -> None:
        super().__init__(class_counts, effective_number_weights(class_counts, beta), reduction)
