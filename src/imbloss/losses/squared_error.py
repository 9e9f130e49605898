"""Squared-error losses on softmax outputs: ``mse``, ``mfe``, ``msfe`` (second source).

The per-sample error is ``e_i = sum_n (1/2) (d_n^(i) - y_n^(i))^2`` with ``d`` the one-hot target
and ``y`` the softmax output (the second source's MSE/FPE/FNE summand, Sec. II-2).

- ``mse``: ``(1/N) sum_i e_i``.
- ``mfe`` (Wang et al. 2016): ``l' = FPE + FNE``, the sum over the two classes of the mean error of
  that class's samples; generalised to C classes as ``sum_j mean_{i in j} e_i`` over the classes
  present in the batch (an absent class contributes 0).
- ``msfe`` (Wang et al. 2016): ``l'' = FPE^2 + FNE^2``, generalised as
  ``sum_j (mean_{i in j} e_i)^2``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from imbloss.losses.base import ClassCountLoss
from imbloss.losses.functional import class_means
from imbloss.losses.registry import register_loss


def squared_error_per_sample(logits: Tensor, target: Tensor) -> Tensor:
    """``e_i = (1/2) ||onehot(y_i) - softmax(z_i)||^2`` [N]."""
    one_hot = F.one_hot(target, logits.shape[1]).to(logits.dtype)
    return 0.5 * (one_hot - torch.softmax(logits, dim=1)).square().sum(dim=1)


@register_loss(
    "mse",
    label="MSE",
    order=8,
    parameter_free=True,
    source="mean squared error; Wang et al. 2016, Sec. II-2",
)
class MeanSquaredErrorLoss(ClassCountLoss):
    """``(1/N) sum_i (1/2) ||onehot(y_i) - softmax(z_i)||^2``."""

    def loss(self, logits: Tensor, target: Tensor) -> Tensor:
        return squared_error_per_sample(logits, target).mean()


@register_loss(
    "mfe",
    label="MFE",
    order=9,
    parameter_free=True,
    source="mean false error; Wang et al. 2016, Sec. II-2",
)
class MeanFalseErrorLoss(ClassCountLoss):
    """``sum_j mean_{i in class j} e_i`` over the classes in the batch (binary: FPE + FNE)."""

    def loss(self, logits: Tensor, target: Tensor) -> Tensor:
        errors = squared_error_per_sample(logits, target)
        return class_means(errors, target, self.num_classes).sum()


@register_loss(
    "msfe",
    label="MSFE",
    order=10,
    parameter_free=True,
    source="mean squared false error; Wang et al. 2016, Sec. II-2",
)
class MeanSquaredFalseErrorLoss(ClassCountLoss):
    """``sum_j (mean_{i in class j} e_i)^2`` over the classes in the batch (binary: FPE² + FNE²)."""

    def loss(self, logits: Tensor, target: Tensor) -> Tensor:
        errors = squared_error_per_sample(logits, target)
        return class_means(errors, target, self.num_classes).square().sum()
