"""The parameter-free losses of the first source: ``pf`` and ``pfh`` (Du et al. 2021, Sec. III).

PF-loss, eq. (9)-(10): ``PF = -(1/M) sum_{j=1}^M log q_j`` with ``q_j = (1/N_j) sum_{i in j} p_i``
the mean true-class probability of the batch samples of class j, M the number of classes and
N_j the number of samples of class j in the mini-batch. A class absent from the batch has
``q_j = 1`` and contributes 0 (Sec. III-A), while M stays the number of all classes.
``log q_j = logsumexp_{i in j}(log p_i) - log N_j`` is computed from ``log_softmax``, so the loss
and its gradient are finite for any finite logits.

PFH-loss, Sec. III-E: the same, with the true-class probabilities above 0.5 set to the constant 1
(they pass no gradient), so that only the hard samples (p_i <= 0.5) drive each class mean.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from imbloss.losses.base import ClassCountLoss
from imbloss.losses.functional import class_log_mean_exp, true_class_log_prob
from imbloss.losses.registry import register_loss

LOG_HALF = math.log(0.5)


@register_loss(
    "pf",
    label="PF-loss",
    order=6,
    parameter_free=True,
    source="PF-loss; Du et al. 2021, Sec. III-A, eq. (9)-(10)",
)
class ParameterFreeLoss(ClassCountLoss):
    """``-(1/M) sum_j log q_j``, ``q_j`` the batch mean of ``p_i`` over class j (absent: 0 term)."""

    def true_class_log_probs(self, logits: Tensor, target: Tensor) -> Tensor:
        """The ``log p_i`` [N] that enter the class means."""
        return true_class_log_prob(logits, target)

    def loss(self, logits: Tensor, target: Tensor) -> Tensor:
        log_p = self.true_class_log_probs(logits, target)
        return -class_log_mean_exp(log_p, target, self.num_classes).sum() / self.num_classes


@register_loss(
    "pfh",
    label="PFH-loss",
    order=7,
    parameter_free=True,
    source="PFH-loss; Du et al. 2021, Sec. III-E",
)
class HardSampleParameterFreeLoss(ParameterFreeLoss):
    """PF-loss with every true-class probability above 0.5 replaced by the constant 1."""

    def true_class_log_probs(self, logits: Tensor, target: Tensor) -> Tensor:
        log_p = true_class_log_prob(logits, target)
        return torch.where(log_p > LOG_HALF, torch.zeros_like(log_p), log_p)
