"""Prior-shifted cross-entropy: ``la`` (logit adjustment) and ``bsm`` (balanced softmax).

- ``la`` (Menon et al. 2021, logit-adjusted loss): cross-entropy of ``z_j + tau * log pi_j`` with
  the class prior ``pi_j = N_j / sum_k N_k``; mean over samples.
- ``bsm`` (Ren et al. 2020, balanced softmax): cross-entropy of ``z_j + log N_j``. Since softmax is
  invariant to adding ``-log sum_k N_k`` to every logit, this is exactly ``la`` with ``tau = 1``,
  and it is implemented as such.

Only training is affected: predictions use the unadjusted logits.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from imbloss.losses.base import ClassCountLoss, checked_hparam
from imbloss.losses.registry import register_loss


@register_loss(
    "la",
    label="LA",
    order=12,
    parameter_free=False,
    source="logit-adjusted cross-entropy; Menon et al. 2021",
)
class LogitAdjustedLoss(ClassCountLoss):
    """``-(1/N) sum_i log softmax(z_i + tau * log pi)_{y_i}``, ``pi_j = N_j / sum_k N_k``."""

    logit_offsets: Tensor

    def __init__(self, class_counts: Sequence[int], tau: float = 1.0) -> None:
        super().__init__(class_counts)
        tau = checked_hparam("tau", tau, accepted="a number >= 0", valid=lambda v: v >= 0)
        counts = torch.as_tensor(class_counts, dtype=torch.float64)
        offsets = tau * torch.log(counts / counts.sum())
        self.register_buffer("logit_offsets", offsets.to(torch.float32), persistent=False)

    def loss(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(logits + self.logit_offsets.to(logits.dtype), target)


@register_loss(
    "bsm",
    label="BSM",
    order=13,
    parameter_free=True,
    source="balanced softmax; Ren et al. 2020",
)
class BalancedSoftmaxLoss(LogitAdjustedLoss):
    """``-(1/N) sum_i log softmax(z_i + log N)_{y_i}``, i.e. ``la`` with ``tau = 1``."""

    def __init__(self, class_counts: Sequence[int]) -> None:
        super().__init__(class_counts, tau=1.0)
