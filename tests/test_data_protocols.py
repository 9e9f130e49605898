"""Imbalance protocols: exact counts at the sources' real split sizes, determinism, bad input.

The protocols only look at labels, so the sources here have the official label layouts
(Fashion-MNIST / CIFAR-10: 6000 or 5000 train and 1000 test per class; CIFAR-100: 500 / 100 per
fine class with the real superclass mapping) and 1×1×1 images.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from imbloss.data.protocols import (
    ProtocolSettings,
    Selection,
    apply_protocol,
    available_protocols,
    exp_profile,
)
from imbloss.data.sources import SourceData, SplitData
from imbloss.errors import ConfigError

from helpers.cifar import CIFAR100_COARSE, CIFAR100_COARSE_OF_FINE, CIFAR100_FINE


def _split(per_class: int, num_classes: int, coarse_of: list[int] | None = None) -> SplitData:
    labels = torch.arange(num_classes).repeat(per_class)  # interleaved 0..C-1, 0..C-1, ...
    coarse = None if coarse_of is None else torch.tensor(coarse_of)[labels]
    return SplitData(torch.zeros(len(labels), 1, 1, 1, dtype=torch.uint8), labels, coarse)


def _source(train: int, test: int, num_classes: int = 10) -> SourceData:
    return SourceData(
        _split(train, num_classes), _split(test, num_classes), [f"c{j}" for j in range(num_classes)]
    )


FASHION_MNIST = _source(6000, 1000)
CIFAR10 = _source(5000, 1000)
CIFAR100 = SourceData(
    _split(500, 100, CIFAR100_COARSE_OF_FINE),
    _split(100, 100, CIFAR100_COARSE_OF_FINE),
    CIFAR100_FINE,
    CIFAR100_COARSE,
)


def _counts(task, split: str) -> list[int]:
    selection = getattr(task, split)
    return torch.bincount(selection.targets, minlength=task.num_classes).tolist()


def test_registry_names_the_five_protocols():
    assert available_protocols() == ["binary", "exp", "none", "step", "superclass_pair"]


@pytest.mark.parametrize(
    ("ir", "train_even", "test_even"),
    [(10, 600, 100), (50, 120, 20), (100, 60, 10), (200, 30, 5)],
)
def test_step_on_fashion_mnist_keeps_one_over_ir_of_even_classes(ir, train_even, test_even):
    task = apply_protocol("step", FASHION_MNIST, ProtocolSettings(ir=ir))
    assert _counts(task, "train") == [train_even, 6000] * 5
    assert _counts(task, "test") == [test_even, 1000] * 5
    assert task.minority_classes == [0, 2, 4, 6, 8]


def test_step_ir_100_training_split_has_30300_images():
    task = apply_protocol("step", FASHION_MNIST, ProtocolSettings(ir=100))
    assert len(task.train.indices) == 30300
    assert len(task.test.indices) == 5050


def test_step_rounds_half_up():
    # CIFAR-10 at IR=200: 5000/200 = 25 train, 1000/200 = 5 test; at IR=400: 12.5 -> 13, 2.5 -> 3.
    task = apply_protocol("step", CIFAR10, ProtocolSettings(ir=400))
    assert _counts(task, "train")[:2] == [13, 5000]
    assert _counts(task, "test")[:2] == [3, 1000]


def test_selection_targets_are_the_labels_at_the_kept_indices():
    task = apply_protocol("step", CIFAR10, ProtocolSettings(ir=10))
    assert torch.equal(task.train.targets, CIFAR10.train.labels[task.train.indices])
    assert torch.all(task.train.indices[1:] > task.train.indices[:-1])


@pytest.mark.parametrize("minority", [1, 3, 5, 7, 9])
def test_binary_cifar10_natural_ratio_is_9(minority):
    task = apply_protocol("binary", CIFAR10, ProtocolSettings(ir=None, minority_class=minority))
    assert _counts(task, "train") == [45000, 5000]
    assert _counts(task, "test") == [9000, 1000]
    assert task.class_names == [f"not_c{minority}", f"c{minority}"]
    assert task.minority_classes == [1]
    # label 1 is exactly the chosen class
    assert torch.equal(
        CIFAR10.train.labels[task.train.indices] == minority, task.train.targets.bool()
    )


@pytest.mark.parametrize("minority", [19, 39, 59, 79, 99])
def test_binary_cifar100_natural_ratio_is_99(minority):
    task = apply_protocol("binary", CIFAR100, ProtocolSettings(ir=99, minority_class=minority))
    assert _counts(task, "train") == [49500, 500]
    assert _counts(task, "test") == [9900, 100]


def test_binary_larger_ir_subsamples_the_minority():
    task = apply_protocol("binary", CIFAR10, ProtocolSettings(ir=100, minority_class=3))
    assert _counts(task, "train") == [45000, 450]
    assert _counts(task, "test") == [9000, 90]


def test_binary_ir_below_the_natural_ratio_is_refused():
    with pytest.raises(ConfigError, match=r"ir=5 is below the natural ratio 9.*ir >= 9"):
        apply_protocol("binary", CIFAR10, ProtocolSettings(ir=5, minority_class=3))


@pytest.mark.parametrize("minority", [None, -1, 10])
def test_binary_needs_a_valid_minority_class(minority):
    with pytest.raises(ConfigError, match=r"minority_class in 0\.\.9"):
        apply_protocol("binary", CIFAR10, ProtocolSettings(ir=None, minority_class=minority))


@pytest.mark.parametrize(
    ("pair", "fraction", "train", "test"),
    [
        # household: 5 fine classes per side -> 2500 / 500 per side
        ("household", 0.2, [2500, 625], [500, 125]),
        ("household", 0.1, [2500, 278], [500, 56]),
        ("household", 0.05, [2500, 132], [500, 26]),
        ("tree_1", 0.2, [500, 125], [100, 25]),
        ("tree_1", 0.1, [500, 56], [100, 11]),
        ("tree_1", 0.05, [500, 26], [100, 5]),
        ("tree_2", 0.1, [500, 56], [100, 11]),
    ],
)
def test_superclass_pair_counts(pair, fraction, train, test):
    settings = ProtocolSettings(ir=None, pair=pair, minority_fraction=fraction)
    task = apply_protocol("superclass_pair", CIFAR100, settings)
    assert _counts(task, "train") == train
    assert _counts(task, "test") == test
    assert train[1] / sum(train) == pytest.approx(fraction, abs=0.002)


@pytest.mark.parametrize(
    ("pair", "names", "fine_of_label"),
    [
        ("tree_1", ["maple_tree", "oak_tree"], ({47}, {52})),
        ("tree_2", ["oak_tree", "palm_tree"], ({52}, {56})),
        ("household", ["household_electrical_devices", "household_furniture"],
         ({22, 39, 40, 86, 87}, {5, 20, 25, 84, 94})),
    ],
)  # fmt: skip
def test_superclass_pair_labels_the_named_classes(pair, names, fine_of_label):
    settings = ProtocolSettings(ir=None, pair=pair, minority_fraction=0.2)
    task = apply_protocol("superclass_pair", CIFAR100, settings)
    assert task.class_names == names
    fine = CIFAR100.train.labels[task.train.indices]
    for label, expected in enumerate(fine_of_label):
        assert set(fine[task.train.targets == label].tolist()) == expected


def test_exp_profile_matches_cifar10_lt():
    # the CIFAR-10-LT (IR=100) counts: 5000 * 100^(-i/9), floored
    assert exp_profile(5000, 10, 100) == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    assert sum(exp_profile(500, 100, 100)) == 10847  # CIFAR-100-LT, IR=100


def test_exp_subsamples_train_only_and_marks_the_smaller_half():
    task = apply_protocol("exp", CIFAR10, ProtocolSettings(ir=100))
    assert _counts(task, "train") == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    assert _counts(task, "test") == [1000] * 10
    assert task.minority_classes == [5, 6, 7, 8, 9]


def test_none_keeps_everything():
    task = apply_protocol("none", CIFAR10, ProtocolSettings(ir=None))
    assert _counts(task, "train") == [5000] * 10
    assert task.minority_classes == []


@pytest.mark.parametrize("protocol", ["step", "exp"])
def test_same_seed_same_indices_other_seed_other_indices(protocol):
    def indices(seed):
        return apply_protocol(protocol, CIFAR10, ProtocolSettings(ir=10, seed=seed)).train.indices

    first = indices(3)
    torch.manual_seed(12345)  # the training seed must not matter
    assert torch.equal(first, indices(3))
    assert not torch.equal(first, indices(4))


def test_binary_and_pair_subsampling_depend_on_the_seed_only():
    for protocol, settings in (
        ("binary", {"ir": 50, "minority_class": 3}),
        ("superclass_pair", {"ir": None, "pair": "tree_1", "minority_fraction": 0.1}),
    ):
        source = CIFAR10 if protocol == "binary" else CIFAR100
        runs = [
            apply_protocol(protocol, source, ProtocolSettings(seed=seed, **settings)).test.indices
            for seed in (0, 0, 1)
        ]
        assert torch.equal(runs[0], runs[1])
        assert not torch.equal(runs[0], runs[2])


@pytest.mark.parametrize(
    ("protocol", "settings", "message"),
    [
        ("steps", {"ir": 10}, r"unknown protocol 'steps'; accepted: binary, exp, none, step"),
        ("step", {"ir": None}, r"protocol 'step' needs ir"),
        ("exp", {"ir": None}, r"protocol 'exp' needs ir"),
        ("step", {"ir": 2001}, r"ir=2001 leaves class 0 \(c0\) with no test sample.*ir <= 2000"),
        ("exp", {"ir": 5001}, r"ir=5001 leaves class 9 \(c9\) with no train sample.*ir <= 5000"),
        ("binary", {"ir": 20000, "minority_class": 1}, r"no test sample.*ir <= 18000"),
        ("none", {"ir": 10}, r"protocol 'none' takes no ir, got ir=10"),
    ],
)
def test_bad_settings_raise_config_errors(protocol, settings, message):
    with pytest.raises(ConfigError, match=message):
        apply_protocol(protocol, CIFAR10, ProtocolSettings(**settings))


def test_ir_at_the_limit_keeps_one_sample():
    task = apply_protocol("step", CIFAR10, ProtocolSettings(ir=2000))
    assert _counts(task, "test")[0] == 1


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"ir": 10, "pair": "tree_1", "minority_fraction": 0.1}, r"takes no ir.*minority_fraction"),
        ({"ir": None, "pair": "tree_3", "minority_fraction": 0.1},
         r"unknown superclass pair 'tree_3'; accepted: household, tree_1, tree_2"),
        ({"ir": None, "pair": "tree_1", "minority_fraction": 0.5},
         r"minority_fraction in \(0, 0.5\)"),
        ({"ir": None, "pair": "tree_1", "minority_fraction": None}, r"minority_fraction"),
    ],
)  # fmt: skip
def test_bad_superclass_pair_settings(settings, message):
    with pytest.raises(ConfigError, match=message):
        apply_protocol("superclass_pair", CIFAR100, ProtocolSettings(**settings))


def test_superclass_pair_needs_cifar100_labels():
    settings = ProtocolSettings(ir=None, pair="household", minority_fraction=0.1)
    with pytest.raises(ConfigError, match="accepted dataset: cifar100"):
        apply_protocol("superclass_pair", CIFAR10, settings)
    settings = ProtocolSettings(ir=None, pair="tree_1", minority_fraction=0.1)
    with pytest.raises(ConfigError, match=r"maple_tree, oak_tree.*accepted dataset: cifar100"):
        apply_protocol("superclass_pair", CIFAR10, settings)


@pytest.mark.parametrize(
    ("protocol", "source", "settings"),
    [
        ("none", CIFAR10, {"ir": None}),
        ("step", FASHION_MNIST, {"ir": 100}),
        ("exp", CIFAR10, {"ir": 10}),
        ("binary", CIFAR10, {"ir": 50, "minority_class": 3}),
        ("superclass_pair", CIFAR100, {"ir": None, "pair": "tree_1", "minority_fraction": 0.1}),
    ],
)
def test_the_protocol_test_split_sits_inside_the_whole_one(protocol, source, settings):
    task = apply_protocol(protocol, source, ProtocolSettings(seed=2, **settings))
    positions = task.test_positions_in_full_test()
    assert len(positions) == len(task.test.indices)
    assert torch.equal(task.full_test.indices[positions], task.test.indices)
    assert torch.equal(task.full_test.targets[positions], task.test.targets)


def test_a_test_split_outside_the_whole_one_is_refused():
    task = apply_protocol("step", FASHION_MNIST, ProtocolSettings(ir=100))
    kept = task.full_test.indices[task.full_test.targets == 1]  # class 1 only
    narrowed = dataclasses.replace(task, full_test=Selection(kept, torch.ones_like(kept)))
    with pytest.raises(ValueError, match="not a subset"):
        narrowed.test_positions_in_full_test()
    relabelled = dataclasses.replace(
        task, full_test=Selection(task.full_test.indices, 1 - task.full_test.targets.clamp(0, 1))
    )
    with pytest.raises(ValueError, match="labels differ"):
        relabelled.test_positions_in_full_test()
