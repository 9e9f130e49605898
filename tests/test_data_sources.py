"""Dataset sources: the real Fashion-MNIST files, CIFAR readers on generated files, synthetic."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from imbloss.data.sources import (
    DEBIAN_FASHION_MNIST_DIR,
    FASHION_MNIST_FILES,
    available_sources,
    fetch_source,
    load_source,
)
from imbloss.errors import ConfigError

from helpers.cifar import (
    CIFAR10_CLASSES,
    CIFAR100_COARSE,
    CIFAR100_COARSE_OF_FINE,
    CIFAR100_FINE,
    write_fake_cifar10,
    write_fake_cifar100,
)

needs_debian_files = pytest.mark.skipif(
    not all((DEBIAN_FASHION_MNIST_DIR / f"{f}.gz").is_file() for f in FASHION_MNIST_FILES),
    reason="Debian package dataset-fashion-mnist not installed",
)


def test_registered_names():
    assert available_sources() == ["cifar10", "cifar100", "fashion_mnist", "synthetic"]


def test_unknown_dataset_names_the_accepted_ones(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown dataset 'mnist'; accepted: cifar10, cifar100"):
        load_source("mnist", tmp_path)


def test_unknown_option_names_the_accepted_ones(tmp_path):
    with pytest.raises(ConfigError, match=r"no option image_size; accepted: download, verify"):
        load_source("cifar10", tmp_path, image_size=8)


@needs_debian_files
def test_fashion_mnist_from_the_debian_files(tmp_path):
    fetch_source("fashion_mnist", tmp_path, download=False)
    raw = tmp_path / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(FASHION_MNIST_FILES)
    data = load_source("fashion_mnist", tmp_path)
    assert data.train.images.shape == (60000, 1, 28, 28)
    assert data.test.images.shape == (10000, 1, 28, 28)
    assert data.train.images.dtype == torch.uint8 and data.train.labels.dtype == torch.int64
    assert torch.bincount(data.train.labels).tolist() == [6000] * 10
    assert torch.bincount(data.test.labels).tolist() == [1000] * 10
    assert data.class_names[0] == "T-shirt/top" and data.class_names[9] == "Ankle boot"


def test_fashion_mnist_missing_everywhere_says_both_ways(tmp_path):
    with pytest.raises(ConfigError, match=r"dataset-fashion-mnist.*torchvision download"):
        fetch_source("fashion_mnist", tmp_path, download=False, debian_dir=tmp_path / "none")


def test_fashion_mnist_load_before_fetch_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="prepare_data"):
        load_source("fashion_mnist", tmp_path / "missing")


def _pickle(path: Path) -> dict:
    with path.open("rb") as handle:
        return pickle.load(handle)


def test_cifar10_generated_files_fail_verification(tmp_path):
    write_fake_cifar10(tmp_path, per_class_train=5, per_class_test=2)
    with pytest.raises(ConfigError, match=r"md5.*dataset.verify=false"):
        load_source("cifar10", tmp_path, verify=True)


def test_cifar10_reader_on_generated_files(tmp_path):
    folder = write_fake_cifar10(tmp_path, per_class_train=5, per_class_test=2)
    fetch_source("cifar10", tmp_path, download=False)  # files present: nothing to do
    data = load_source("cifar10", tmp_path, verify=False)
    assert data.train.images.shape == (50, 3, 32, 32)
    assert data.test.images.shape == (20, 3, 32, 32)
    assert data.class_names == CIFAR10_CLASSES
    assert torch.bincount(data.train.labels).tolist() == [5] * 10
    # torchvision concatenates data_batch_1..5; each row is a flattened CHW image
    first = _pickle(folder / "data_batch_1")
    assert torch.equal(data.train.images[0], torch.from_numpy(first["data"][0].reshape(3, 32, 32)))
    assert data.train.labels[: len(first["labels"])].tolist() == first["labels"]
    test = _pickle(folder / "test_batch")
    assert torch.equal(data.test.images.flatten(1), torch.from_numpy(np.stack(test["data"])))


def test_cifar100_reader_keeps_fine_and_coarse_labels(tmp_path):
    folder = write_fake_cifar100(tmp_path, per_class_train=3, per_class_test=1)
    data = load_source("cifar100", tmp_path, verify=False)
    assert data.train.images.shape == (300, 3, 32, 32)
    assert data.class_names == CIFAR100_FINE
    assert data.coarse_names == CIFAR100_COARSE
    assert data.test.labels.tolist() == _pickle(folder / "test")["fine_labels"]
    expected_coarse = torch.tensor(CIFAR100_COARSE_OF_FINE)[data.train.labels]
    assert torch.equal(data.train.coarse_labels, expected_coarse)


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_missing_without_download_is_a_config_error(tmp_path, name):
    with pytest.raises(ConfigError, match=r"files not found in .*download"):
        fetch_source(name, tmp_path, download=False)


def test_synthetic_is_deterministic_and_sized_by_options(tmp_path):
    options = {"num_classes": 4, "train_per_class": 30, "test_per_class": 7, "channels": 3}
    first = load_source("synthetic", tmp_path, **options, image_size=6)
    again = load_source("synthetic", tmp_path, **options, image_size=6)
    assert first.train.images.shape == (120, 3, 6, 6)
    assert first.test.images.shape == (28, 3, 6, 6)
    assert torch.bincount(first.train.labels).tolist() == [30] * 4
    assert torch.equal(first.train.images, again.train.images)
    assert first.class_names == ["class_0", "class_1", "class_2", "class_3"]


def test_synthetic_classes_are_learnable(tmp_path):
    data = load_source("synthetic", tmp_path)
    features = data.train.images.flatten(1).float()
    centroids = torch.stack([features[data.train.labels == k].mean(0) for k in range(10)])
    nearest = torch.cdist(data.test.images.flatten(1).float(), centroids).argmin(1)
    assert (nearest == data.test.labels).float().mean() > 0.9


def test_synthetic_rejects_degenerate_sizes(tmp_path):
    with pytest.raises(
        ConfigError, match=r"dataset.num_classes=1 is out of range; accepted: an integer >= 2"
    ):
        load_source("synthetic", tmp_path, num_classes=1)
