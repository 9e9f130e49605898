"""What the training mini-batches contained: per-class counts and the batches missing a class.

The first source calls the mini-batches of an imbalanced set "nonstationary": at IR=100 and batch
500 a minority class has about one sample per batch and is absent from many, and PF-loss's class
means rest on those samples. :class:`BatchStats` counts, over every training batch of a run
(whatever the sampler), with per-class count ``c_j`` of batch b:

- ``mean_per_batch[j]`` = Σ_b c_j(b) / B (B batches over all epochs);
- ``missing_fraction[j]`` = #{b : c_j(b) = 0} / B;
- ``batches_missing_any`` = #{b : min_j c_j(b) = 0} / B.

The counters stay on the batches' device and are updated without a host synchronisation
(:func:`accumulate_batch_counts`); they are read once, at the end. Leading dimensions are
allowed: a stacked trainer of K members keeps counters of shape [K, C] and feeds targets [K, n].
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def accumulate_batch_counts(
    targets: torch.Tensor, class_totals: torch.Tensor, missing: torch.Tensor
) -> torch.Tensor:
    """Add one batch (per leading index) to the running counters, in place; no host sync.

    ``targets`` [..., n] int64; ``class_totals`` [..., C] (samples of class j so far) and
    ``missing`` [..., C] (batches without class j so far), both int64. Returns the batch's
    per-class counts [..., C].
    """
    counts = torch.zeros_like(class_totals)
    counts.scatter_add_(-1, targets, torch.ones_like(targets, dtype=counts.dtype))
    class_totals += counts
    missing += counts == 0
    return counts


class BatchStats:
    """Running per-class counters of training batches (see the module docstring).

    ``shape`` is the leading shape ((), or (K,) for K stacked members).
    """

    def __init__(
        self, num_classes: int, device: torch.device | str = "cpu", shape: Sequence[int] = ()
    ) -> None:
        size = (*shape, num_classes)
        self.class_totals = torch.zeros(size, dtype=torch.int64, device=device)
        self.missing = torch.zeros(size, dtype=torch.int64, device=device)
        self.missing_any = torch.zeros(tuple(shape), dtype=torch.int64, device=device)
        self.batches = 0

    def update(self, targets: torch.Tensor) -> None:
        """Count one training batch (``targets`` [..., n] on the counters' device)."""
        counts = accumulate_batch_counts(targets, self.class_totals, self.missing)
        self.missing_any += (counts == 0).any(-1)
        self.batches += 1

    def state_dict(self) -> dict[str, torch.Tensor | int]:
        """The counters, for a checkpoint (a resumed run goes on counting from them)."""
        return {
            "class_totals": self.class_totals,
            "missing": self.missing,
            "missing_any": self.missing_any,
            "batches": self.batches,
        }

    @classmethod
    def from_state_dict(
        cls, state: dict[str, torch.Tensor | int], device: torch.device | str = "cpu"
    ) -> BatchStats:
        """The counters of :meth:`state_dict`, on ``device``."""
        totals = state["class_totals"]
        stats = cls(totals.shape[-1], device=device, shape=totals.shape[:-1])
        stats.class_totals += totals.to(device)
        stats.missing += state["missing"].to(device)
        stats.missing_any += state["missing_any"].to(device)
        stats.batches = int(state["batches"])
        return stats

    def summary(self, index: int | tuple[int, ...] = ()) -> dict[str, list[float] | float | int]:
        """The figures of one member (``index`` into the leading shape); reads the device once."""
        totals = self.class_totals[index].double().cpu()
        missing = self.missing[index].double().cpu()
        missing_any = float(self.missing_any[index].cpu())
        batches = max(self.batches, 1)
        return {
            "batches": self.batches,
            "mean_per_batch": (totals / batches).tolist(),
            "missing_fraction": (missing / batches).tolist(),
            "batches_missing_any": missing_any / batches,
        }
