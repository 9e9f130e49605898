"""Stateless pieces shared by the losses: true-class log-probabilities and per-class batch means."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def true_class_log_prob(logits: Tensor, target: Tensor) -> Tensor:
    """``log p_i`` [N] of each sample's true class, from ``log_softmax`` (paper eq. (2))."""
    return F.log_softmax(logits, dim=1).gather(1, target.unsqueeze(1)).squeeze(1)


def weighted_mean(values: Tensor, target: Tensor, class_weights: Tensor | None) -> Tensor:
    """``sum_i w_{y_i} v_i / sum_i w_{y_i}``; the plain mean when ``class_weights`` is None.

    The same reduction as ``torch.nn.functional.cross_entropy`` with ``weight``.
    """
    if class_weights is None:
        return values.mean()
    sample_weights = class_weights[target]
    return (sample_weights * values).sum() / sample_weights.sum()


def class_means(values: Tensor, target: Tensor, num_classes: int) -> Tensor:
    """Mean [C] of ``values`` [N] over the batch samples of each class; 0 for an absent class."""
    sums = values.new_zeros(num_classes).index_add(0, target, values)
    counts = torch.bincount(target, minlength=num_classes).to(values.dtype)
    return sums / counts.clamp(min=1)


def class_log_mean_exp(log_values: Tensor, target: Tensor, num_classes: int) -> Tensor:
    """``log((1/N_j) sum_{i in class j} exp(log_values_i))`` [C]; 0 for an absent class.

    Computed with ``logsumexp`` so that it stays finite when every value of a class underflows.
    An absent class's row is all ``-inf``; ``torch.where`` passes no gradient from it.
    """
    membership = F.one_hot(target, num_classes).T.bool()  # [C, N]
    counts = membership.sum(dim=1)
    present = counts > 0
    rows = torch.where(membership, log_values.unsqueeze(0), -torch.inf)
    log_means = torch.logsumexp(rows, dim=1) - counts.clamp(min=1).to(log_values.dtype).log()
    return torch.where(present, log_means, 0.0)
