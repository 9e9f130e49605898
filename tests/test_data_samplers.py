"""Training samplers: exact class counts per epoch, class probabilities, the DRS switch, seeds."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from imbloss.data import ImbalancedDataModule
from imbloss.data.batches import ShuffleSampler
from imbloss.data.samplers import ClassBalancedSampler, available_samplers, build_sampler
from imbloss.errors import ConfigError

# 400 / 100 / 25 samples, class 3 absent, interleaved so that positions and labels differ
COUNTS = [400, 100, 25, 0]
TARGETS = torch.cat([torch.full((n,), j) for j, n in enumerate(COUNTS)])[
    torch.randperm(525, generator=torch.Generator().manual_seed(0))
]


def _class_counts(indices: torch.Tensor) -> list[int]:
    return torch.bincount(TARGETS[indices], minlength=len(COUNTS)).tolist()


def test_registered_samplers_match_the_config_group():
    configs = sorted(p.stem for p in (Path(__file__).parents[1] / "conf" / "sampler").glob("*"))
    assert available_samplers() == configs
    assert configs == ["class_balanced", "drs", "none", "oversample", "undersample"]


def test_none_visits_every_sample_once():
    sampler = build_sampler("none", TARGETS, 4, seed=0)
    assert sampler.num_samples == 525
    assert sorted(sampler.epoch_indices(0).tolist()) == list(range(525))


@pytest.mark.parametrize("epoch", [0, 1, 7])
def test_oversample_gives_every_present_class_the_largest_count(epoch):
    sampler = build_sampler("oversample", TARGETS, 4, seed=3)
    indices = sampler.epoch_indices(epoch)
    assert sampler.num_samples == len(indices) == 3 * 400
    assert _class_counts(indices) == [400, 400, 400, 0]
    visits = torch.bincount(indices, minlength=525)
    # each sample of class j: floor(400 / N_j) or one more time (100 -> 4 exactly, 25 -> 16)
    assert set(visits[TARGETS == 0].tolist()) == {1}
    assert set(visits[TARGETS == 1].tolist()) == {4}
    assert set(visits[TARGETS == 2].tolist()) == {16}


def test_oversample_remainder_is_drawn_without_replacement():
    targets = torch.tensor([0] * 10 + [1] * 3)  # 10 = 3 * 3 + 1: one sample of class 1 gets 4
    visits = torch.bincount(build_sampler("oversample", targets, 2, seed=0).epoch_indices(0))
    assert visits[:10].tolist() == [1] * 10
    assert sorted(visits[10:].tolist()) == [3, 3, 4]


@pytest.mark.parametrize("epoch", [0, 1, 7])
def test_undersample_cuts_every_present_class_to_the_smallest_count(epoch):
    sampler = build_sampler("undersample", TARGETS, 4, seed=3)
    indices = sampler.epoch_indices(epoch)
    assert sampler.num_samples == len(indices) == 3 * 25
    assert _class_counts(indices) == [25, 25, 25, 0]
    assert len(set(indices.tolist())) == 75  # no sample twice in an epoch


def test_undersample_draws_anew_every_epoch():
    sampler = build_sampler("undersample", TARGETS, 4, seed=3)
    first, second = set(sampler.epoch_indices(0).tolist()), set(sampler.epoch_indices(1).tolist())
    assert first != second


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        (0.0, [1 / 3, 1 / 3, 1 / 3, 0.0]),
        (0.5, [20 / 35, 10 / 35, 5 / 35, 0.0]),
        (1.0, [400 / 525, 100 / 525, 25 / 525, 0.0]),
    ],
)
def test_class_balanced_frequencies_follow_p_j(q, expected):
    sampler = build_sampler("class_balanced", TARGETS, 4, seed=5, q=q)
    assert sampler.num_samples == 525
    torch.testing.assert_close(sampler.class_probs, torch.tensor(expected, dtype=torch.float64))
    epochs = 40
    counts = torch.tensor(
        [_class_counts(sampler.epoch_indices(epoch)) for epoch in range(epochs)]
    ).sum(0)
    draws = epochs * 525
    for j, p in enumerate(expected):
        tolerance = 4.5 * math.sqrt(draws * p * (1 - p))  # binomial, 4.5 standard deviations
        assert abs(counts[j] - draws * p) <= tolerance, (j, counts[j].item(), draws * p)


def test_class_balanced_draws_uniformly_within_a_class():
    sampler = build_sampler("class_balanced", TARGETS, 4, seed=5, q=0.0)
    indices = torch.cat([sampler.epoch_indices(epoch) for epoch in range(40)])
    visits = torch.bincount(indices, minlength=525)[TARGETS == 2].double()
    # ~7000 draws of class 2 over its 25 samples: every sample near 280 (binomial, 4.5 sd)
    assert abs(visits.sum().item() - 7000) < 4.5 * math.sqrt(21000 * (1 / 3) * (2 / 3))
    assert (visits - visits.mean()).abs().max() < 4.5 * math.sqrt(visits.mean() * (1 - 1 / 25))


def test_drs_switches_at_the_stated_epoch():
    # start 0.5 of 5 epochs: epochs 0 and 1 shuffled, class-balanced from epoch 2
    sampler = build_sampler("drs", TARGETS, 4, seed=2, start=0.5, max_epochs=5, q=0.0)
    assert sampler.switch_epoch == 2 and sampler.num_samples == 525
    shuffle = ShuffleSampler(525, 2)
    balanced = ClassBalancedSampler(TARGETS, 4, 2, q=0.0)
    for epoch in range(5):
        expected = shuffle if epoch < 2 else balanced
        assert torch.equal(sampler.epoch_indices(epoch), expected.epoch_indices(epoch))
    assert _class_counts(sampler.epoch_indices(1)) == [400, 100, 25, 0]


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("none", {}),
        ("oversample", {}),
        ("undersample", {}),
        ("class_balanced", {"q": 0.5}),
        ("drs", {"start": 0.4, "max_epochs": 5}),
    ],
)
def test_indices_are_a_function_of_seed_and_epoch_alone(name, options):
    first = build_sampler(name, TARGETS, 4, seed=11, **options)
    replay = build_sampler(name, TARGETS, 4, seed=11, **options)
    other = build_sampler(name, TARGETS, 4, seed=12, **options)
    later = replay.epoch_indices(4)  # asked first: nothing depends on the epochs before
    assert torch.equal(first.epoch_indices(4), later)
    assert torch.equal(first.epoch_indices(0), replay.epoch_indices(0))
    assert not torch.equal(first.epoch_indices(4), other.epoch_indices(4))


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("stratified", {}, r"unknown sampler 'stratified'; accepted: class_balanced, drs, none"),
        (
            "oversample",
            {"q": 0.5},
            r"sampler 'oversample' got unknown option\(s\) q; accepted: none",
        ),
        ("class_balanced", {"q": -1}, r"sampler.q=-1 is invalid; accepted: a number >= 0"),
        ("drs", {"start": 1.5}, r"sampler.start=1.5 is invalid; accepted: a number in \[0, 1\]"),
        ("drs", {"max_epochs": 0}, r"sampler.max_epochs=0 is invalid; accepted: an integer >= 1"),
    ],
)
def test_bad_sampler_settings_are_config_errors(name, options, message):
    with pytest.raises(ConfigError, match=message):
        build_sampler(name, TARGETS, 4, seed=0, **options)


def test_unknown_sampler_stops_the_datamodule_before_loading(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown sampler 'smote'"):
        ImbalancedDataModule("synthetic", str(tmp_path), sampler={"name": "smote"})


@pytest.mark.parametrize(
    "sampler", [{"name": "class_balanced", "q": -1}, {"name": "drs", "start": 0.8, "q": -1}]
)
def test_bad_sampler_value_stops_the_datamodule_before_loading(tmp_path, sampler):
    with pytest.raises(ConfigError, match=r"sampler.q=-1 is invalid"):
        ImbalancedDataModule("synthetic", str(tmp_path), sampler=sampler)


@pytest.mark.parametrize(
    ("sampler", "steps"),
    [
        # synthetic step IR=10: train counts [18, 180] * 5, batch 64
        ({"name": "none"}, math.ceil(990 / 64)),
        ({"name": "oversample"}, math.ceil(1800 / 64)),
        ({"name": "undersample"}, math.ceil(180 / 64)),
        ({"name": "class_balanced", "q": 0.5}, math.ceil(990 / 64)),
    ],
)
def test_datamodule_serves_the_configured_sampler(tmp_path, sampler, steps):
    datamodule = ImbalancedDataModule(
        "synthetic", str(tmp_path), ir=10, batch_size=64, sampler=sampler
    )
    datamodule.prepare_data()
    datamodule.setup("fit")
    batches = datamodule.train_batches(seed=4)
    assert len(batches) == steps == len(list(batches))
    summary = datamodule.summary()
    assert summary["sampler"] == sampler["name"]
    assert summary["sampler_options"] == {k: v for k, v in sampler.items() if k != "name"}
    assert (summary["steps_per_epoch"], summary["batch_size"]) == (steps, 64)
    replay = datamodule.train_batches(seed=4)
    for epoch in (0, 2):
        batches.set_epoch(epoch)
        replay.set_epoch(epoch)
        assert torch.equal(batches.epoch_indices(), replay.epoch_indices())
