"""Stratified validation split: the per-class rule and the carved indices."""

from __future__ import annotations

import pytest
import torch

from imbloss.data.sampling import seeded_rng
from imbloss.data.splits import stratified_split, validation_count
from imbloss.errors import ConfigError


@pytest.mark.parametrize(
    ("class_size", "fraction", "expected"),
    [
        (6000, 0.1, 600),
        (60, 0.1, 6),
        (54, 0.1, 5),  # 5.4 -> 5
        (15, 0.1, 2),  # 1.5 rounds half up
        (5, 0.1, 1),  # 0.5 -> 1
        (3, 0.1, 1),  # 0.3 -> 0, raised to 1
        (2, 0.9, 1),  # 1.8 -> 2, capped so 1 stays in train
        (1, 0.5, 0),  # a lone sample stays in train
    ],
)
def test_validation_count_rule(class_size, fraction, expected):
    assert validation_count(class_size, fraction) == expected


def test_split_is_a_stratified_partition():
    targets = torch.tensor([0] * 60 + [1] * 6000 + [2] * 3 + [3] * 1)[torch.randperm(6064)]
    train, val = stratified_split(targets, 4, 0.1, seeded_rng(0, "val"))
    assert torch.bincount(targets[val], minlength=4).tolist() == [6, 600, 1, 0]
    assert torch.bincount(targets[train], minlength=4).tolist() == [54, 5400, 2, 1]
    assert sorted(torch.cat([train, val]).tolist()) == list(range(6064))


def test_split_depends_on_the_seed():
    targets = torch.arange(10).repeat(100)
    first = stratified_split(targets, 10, 0.2, seeded_rng(0, "val"))[1]
    again = stratified_split(targets, 10, 0.2, seeded_rng(0, "val"))[1]
    other = stratified_split(targets, 10, 0.2, seeded_rng(1, "val"))[1]
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_fraction_outside_zero_one_is_refused(fraction):
    with pytest.raises(ConfigError, match=f"val_fraction={fraction}.*0 < val_fraction < 1"):
        stratified_split(torch.arange(4), 4, fraction, seeded_rng(0, "val"))
