"""Losses for tests: cross-entropy that turns NaN on cue."""

from __future__ import annotations

import torch
from torch import nn


class NaNFromCall(nn.Module):
    """Cross-entropy, NaN from the ``first_nan``-th call on (1-based)."""

    def __init__(self, first_nan: int) -> None:
        super().__init__()
        self.calls, self.first_nan = 0, first_nan

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        loss = nn.functional.cross_entropy(logits, target)
        return loss * float("nan") if self.calls >= self.first_nan else loss
