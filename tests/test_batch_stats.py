"""Mini-batch diagnostics: exact per-class counts and missing fractions, stacked members too."""

from __future__ import annotations

import pytest
import torch

from imbloss.batch_stats import BatchStats, accumulate_batch_counts
from imbloss.data.batches import ShuffleSampler, TensorBatches


def test_counts_by_hand() -> None:
    stats = BatchStats(3)
    for batch in ([0, 1, 1, 1], [1, 1, 2, 2], [0, 2, 1]):
        stats.update(torch.tensor(batch))
    summary = stats.summary()
    assert summary["batches"] == 3
    assert summary["mean_per_batch"] == pytest.approx([2 / 3, 6 / 3, 3 / 3])
    assert summary["missing_fraction"] == pytest.approx([1 / 3, 0.0, 1 / 3])
    assert summary["batches_missing_any"] == pytest.approx(2 / 3)


def test_accumulate_returns_the_batch_counts_for_stacked_members() -> None:
    totals = torch.zeros(2, 3, dtype=torch.int64)
    missing = torch.zeros(2, 3, dtype=torch.int64)
    counts = accumulate_batch_counts(torch.tensor([[0, 0, 2], [1, 1, 1]]), totals, missing)
    assert counts.tolist() == [[2, 0, 1], [0, 3, 0]]
    stats = BatchStats(3, shape=(2,))
    stats.update(torch.tensor([[0, 0, 2], [1, 1, 1]]))
    stats.update(torch.tensor([[1, 2, 2], [0, 1, 2]]))
    assert stats.summary(1)["missing_fraction"] == pytest.approx([0.5, 0.0, 0.5])
    assert stats.summary(0)["batches_missing_any"] == 1.0


def test_one_epoch_of_shuffled_batches_counts_every_sample_once() -> None:
    targets = torch.tensor([0] * 3 + [1] * 60 + [2] * 37)
    batches = TensorBatches(torch.zeros(100, 1), targets, 16, ShuffleSampler(100, seed=3))
    stats = BatchStats(3)
    missing = torch.zeros(3)
    for _, batch_targets in batches:
        stats.update(batch_targets)
        missing += torch.bincount(batch_targets, minlength=3) == 0
    summary = stats.summary()
    assert summary["batches"] == 7
    assert summary["mean_per_batch"] == pytest.approx([3 / 7, 60 / 7, 37 / 7])
    assert summary["missing_fraction"] == pytest.approx((missing / 7).tolist())
    assert summary["missing_fraction"][0] >= 4 / 7  # 3 samples reach at most 3 of 7 batches
