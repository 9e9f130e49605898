"""Focal loss in its softmax multiclass form: ``focal`` and ``focal_alpha``.

``FL = -(1/N) sum_i (1 - p_i)^gamma log p_i`` (first source, Du et al. 2021, eq. (7), here as a
mean), and ``FL(alpha) = -sum_i alpha_{y_i} (1 - p_i)^gamma log p_i / sum_i alpha_{y_i}`` (eq. (8)
as a weighted mean) with the ``wce`` weights ``alpha_j = 1/N_j`` (minority classes: ``scale/N_j``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from imbloss.losses.base import ClassCountLoss, checked_hparam
from imbloss.losses.functional import true_class_log_prob, weighted_mean
from imbloss.losses.registry import register_loss
from imbloss.losses.weights import MINORITY_SCALE_GRID, inverse_frequency_weights

# Sec. IV-B: gamma is searched in {0, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0}.
GAMMA_GRID: tuple[float, ...] = (0.0, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


@register_loss(
    "focal",
    label="FL",
    order=2,
    parameter_free=False,
    grid={"gamma": GAMMA_GRID},
    source="focal loss (Lin et al. 2017), multiclass form; Du et al. 2021, Sec. II-C, eq. (7)",
)
class FocalLoss(ClassCountLoss):
    """``-(1-p_i)^gamma log p_i``, mean over samples (weighted mean when ``class_weights`` is set).

    ``log p_i`` comes from ``log_softmax``; ``1 - p_i = -expm1(log p_i)`` is clamped below at the
    dtype's smallest normal number so that the factor's gradient stays finite as ``p_i -> 1`` for
    ``0 < gamma < 1`` (the clamp changes the loss by less than that number). ``gamma = 0`` gives a
    factor of exactly 1, i.e. cross-entropy.
    """

    def __init__(self, class_counts: Sequence[int], gamma: float = 2.0) -> None:
        super().__init__(class_counts)
        self.gamma = checked_hparam(
            "gamma", gamma, accepted="a number >= 0", valid=lambda v: v >= 0
        )

    def loss(self, logits: Tensor, target: Tensor) -> Tensor:
        log_p = true_class_log_prob(logits, target)
        one_minus_p = (-torch.expm1(log_p)).clamp(min=torch.finfo(log_p.dtype).tiny)
        per_sample = -one_minus_p.pow(self.gamma) * log_p
        return weighted_mean(per_sample, target, self.class_weights_for(logits))


@register_loss(
    "focal_alpha",
    label="FL(α)",
    order=3,
    parameter_free=False,
    grid={"gamma": GAMMA_GRID, "scale": MINORITY_SCALE_GRID},
    source="focal loss with class weight alpha_j = 1/N_j; Du et al. 2021, Sec. II-C, eq. (8)",
)
class FocalAlphaLoss(FocalLoss):
    """``-sum_i alpha_{y_i} (1-p_i)^gamma log p_i / sum_i alpha_{y_i}`` with the ``wce`` weights."""

    def __init__(self, class_counts: Sequence[int], gamma: float = 2.0, scale: float = 1.0) -> None:
        super().__init__(class_counts, gamma)
        self.class_weights = inverse_frequency_weights(class_counts, scale)
