"""Label noise: exact flipped count per majority class, never to itself, val and test untouched."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from imbloss.data import ImbalancedDataModule
from imbloss.data.noise import flip_majority_labels
from imbloss.errors import ConfigError


def test_flip_counts_are_exact_and_never_to_the_same_class():
    targets = torch.tensor([0] * 40 + [1] * 10 + [2] * 30 + [3] * 5)
    noisy, flipped = flip_majority_labels(
        targets, 4, minority_classes=[1, 3], fraction=0.25, rng=np.random.default_rng(0)
    )
    # round_half_up(0.25 * 40) = 10, round_half_up(0.25 * 30) = round_half_up(7.5) = 8
    assert flipped == [10, 0, 8, 0]
    changed = noisy != targets
    assert changed.sum().item() == 18
    assert torch.bincount(targets[changed], minlength=4).tolist() == flipped
    assert (noisy[changed] != targets[changed]).all()
    assert not changed[(targets == 1) | (targets == 3)].any()  # minority labels untouched
    assert set(noisy[changed].tolist()) <= {0, 1, 2, 3}


def test_flipped_labels_are_uniform_over_the_other_classes():
    targets = torch.zeros(30000, dtype=torch.long)
    noisy, flipped = flip_majority_labels(targets, 4, [], 1.0, np.random.default_rng(1))
    assert flipped == [30000, 0, 0, 0]
    counts = torch.bincount(noisy, minlength=4).tolist()
    assert counts[0] == 0
    # 10000 expected per other class; binomial sd sqrt(30000 * 1/3 * 2/3) = 81.6, 4.5 sd
    assert all(abs(c - 10000) < 4.5 * 81.65 for c in counts[1:])


def _synthetic(tmp_path, **settings) -> ImbalancedDataModule:
    datamodule = ImbalancedDataModule("synthetic", str(tmp_path), ir=10, **settings)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def test_datamodule_flips_training_labels_only(tmp_path):
    clean = _synthetic(tmp_path)
    noisy = _synthetic(tmp_path, label_noise=0.2)
    # train counts [18, 180] * 5 (even classes minority): 0.2 * 180 = 36 flipped per odd class
    assert noisy.label_noise_flipped == [0, 36] * 5
    summary = noisy.summary()
    assert summary["label_noise"] == 0.2 and summary["label_noise_flipped"] == [0, 36] * 5
    assert "label_noise_flipped" not in clean.summary()
    for split in ("val", "test"):
        for clean_part, noisy_part in zip(clean._splits[split], noisy._splits[split], strict=True):
            assert torch.equal(clean_part, noisy_part)
    assert noisy.val_class_counts == clean.val_class_counts
    clean_images, clean_targets = clean._splits["train"]
    noisy_images, noisy_targets = noisy._splits["train"]
    assert torch.equal(clean_images, noisy_images)
    changed = clean_targets != noisy_targets
    assert changed.sum().item() == 180
    assert torch.bincount(clean_targets[changed], minlength=10).tolist() == [0, 36] * 5
    assert noisy.train_class_counts == torch.bincount(noisy_targets, minlength=10).tolist()
    assert sum(noisy.train_class_counts) == sum(clean.train_class_counts)


def test_noise_is_seeded_by_the_dataset_seed(tmp_path):
    first = _synthetic(tmp_path, label_noise=0.2, seed=3)._splits["train"][1]
    again = _synthetic(tmp_path, label_noise=0.2, seed=3)._splits["train"][1]
    assert torch.equal(first, again)
    other = _synthetic(tmp_path, label_noise=0.2, seed=4)
    clean_other = _synthetic(tmp_path, seed=4)
    # another subsample, but the same exact count per class
    assert other.label_noise_flipped == [0, 36] * 5
    assert not torch.equal(other._splits["train"][1], clean_other._splits["train"][1])


@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan"), True])
def test_bad_label_noise_is_a_config_error(tmp_path, value):
    with pytest.raises(ConfigError, match=r"dataset.label_noise=.* accepted: a number in \[0, 1\]"):
        ImbalancedDataModule("synthetic", str(tmp_path), label_noise=value)
