"""Label-distribution-aware margin loss: ``ldam`` and ``wldam`` (deferred re-weighting).

LDAM (Cao et al. 2019; compared in Du et al. 2021, Sec. II-D and IV): class margins
``m_j = max_m * N_j^(-1/4) / max_k N_k^(-1/4)`` (the largest margin, of the rarest class, is
``max_m``, the first source's hyperparameter C); the true-class logit is reduced by its margin,
everything is multiplied by ``s``, and cross-entropy is taken:
``-(1/N) sum_i log softmax(s * (z_i - m_{y_i} e_{y_i}))_{y_i}``.

LDAM-DRW's code computes the logits of these losses with a cosine classifier (normalised features
and class weights, :class:`imbloss.models.resnet32.CosineClassifier`); both declare it
(``cosine_classifier``), and the long-tail presets build ResNet-32 with one for them.

``wldam`` is the same loss trained with deferred re-weighting (DRW, Cao et al. 2019): unweighted
before epoch ``drw_epoch``, and from that epoch on the weighted mean with the effective-number
weights ``(1-beta)/(1-beta^N_j)`` (normalised to sum to C). The default ``drw_epoch = 160`` is
0.8 of the first source's 200 epochs (Sec. IV-B), the proportion of the LDAM paper's schedule.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from imbloss.losses.base import ClassCountLoss, checked_hparam
from imbloss.losses.registry import register_loss
from imbloss.losses.weights import effective_number_weights

# Sec. IV-B: "C is tuned in the range of [0.1, 1] with a step of 0.1".
MAX_MARGIN_GRID: tuple[float, ...] = tuple(round(0.1 * k, 1) for k in range(1, 11))


def ldam_margins(class_counts: Sequence[int], max_m: float) -> Tensor:
    """``m_j = max_m * N_j^(-1/4) / max_k N_k^(-1/4)``, float32 [C]."""
    counts = torch.as_tensor(class_counts, dtype=torch.float64)
    margins = counts.pow(-0.25)
    return (max_m * margins / margins.max()).to(torch.float32)


@register_loss(
    "ldam",
    label="LDAM",
    order=4,
    parameter_free=False,
    grid={"max_m": MAX_MARGIN_GRID},
    source="LDAM (Cao et al. 2019); Du et al. 2021, Sec. II-D, IV-B (C = max_m)",
    cosine_classifier=True,
)
class LDAMLoss(ClassCountLoss):
    """Cross-entropy of ``s * (logits - m_y on the true class)``; mean over samples."""

    margins: Tensor

    def __init__(self, class_counts: Sequence[int], max_m: float = 0.5, s: float = 30.0) -> None:
        super().__init__(class_counts)
        max_m = checked_hparam("max_m", max_m, accepted="a number >= 0", valid=lambda v: v >= 0)
        self.s = checked_hparam("s", s, accepted="a number > 0", valid=lambda v: v > 0)
        self.register_buffer("margins", ldam_margins(class_counts, max_m), persistent=False)

    def loss(self, logits: Tensor, target: Tensor) -> Tensor:
        true_class = F.one_hot(target, self.num_classes).to(logits.dtype)
        margins = self.margins.to(logits.dtype)[target].unsqueeze(1)
        scaled = self.s * (logits - margins * true_class)
        return F.cross_entropy(scaled, target, weight=self.class_weights_for(logits))


@register_loss(
    "wldam",
    label="WLDAM",
    order=5,
    parameter_free=False,
    grid={"max_m": MAX_MARGIN_GRID},
    source="LDAM with deferred re-weighting (Cao et al. 2019); Du et al. 2021, Sec. IV",
    cosine_classifier=True,
)
class DeferredReweightedLDAMLoss(LDAMLoss):
    """LDAM, unweighted before epoch ``drw_epoch`` and weighted by effective number from it on."""

    drw_weights: Tensor

    def __init__(
        self,
        class_counts: Sequence[int],
        max_m: float = 0.5,
        s: float = 30.0,
        drw_epoch: int = 160,
        beta: float = 0.9999,
    ) -> None:
        super().__init__(class_counts, max_m, s)
        self.drw_epoch = int(
            checked_hparam(
                "drw_epoch",
                drw_epoch,
                accepted="a whole number >= 0",
                valid=lambda v: v >= 0 and v.is_integer(),
            )
        )
        self.register_buffer(
            "drw_weights", effective_number_weights(class_counts, beta), persistent=False
        )
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Switch the effective-number weights on from epoch ``drw_epoch`` (0-based), off before."""
        self.class_weights = self.drw_weights if epoch >= self.drw_epoch else None
