"""ImbalancedDataModule: counts, batches, seeds, Lightning integration, configs, bad input."""

from __future__ import annotations

from pathlib import Path

import lightning
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from imbloss.data import ImbalancedDataModule
from imbloss.data.sources import DEBIAN_FASHION_MNIST_DIR, FASHION_MNIST_FILES, load_source
from imbloss.data.transforms import channel_stats
from imbloss.errors import ConfigError

from helpers.cifar import write_fake_cifar10, write_fake_cifar100
from helpers.trainers import quiet_trainer

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def _synthetic(tmp_path: Path, **overrides) -> ImbalancedDataModule:
    settings = {"ir": 10, "batch_size": 64, "eval_batch_size": 100, **overrides}
    datamodule = ImbalancedDataModule("synthetic", str(tmp_path), **settings)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def test_synthetic_step_counts_and_attributes(tmp_path):
    datamodule = _synthetic(tmp_path)
    # 200 train per class: even classes keep 20 -> 2 validation, 18 train; odd 200 -> 20 / 180
    assert datamodule.train_class_counts == [18, 180] * 5
    assert datamodule.val_class_counts == [2, 20] * 5
    assert datamodule.test_class_counts == [5, 50] * 5
    assert datamodule.full_test_class_counts == [50] * 10  # the whole test split, no subsampling
    assert datamodule.num_classes == 10
    assert datamodule.input_shape == (1, 8, 8)
    assert datamodule.minority_classes == [0, 2, 4, 6, 8]
    summary = datamodule.summary()
    assert summary["protocol"] == "step" and summary["data_seed"] == 0
    assert summary["train_class_counts"] == datamodule.train_class_counts


@pytest.fixture(scope="module")
def fashion_mnist_dir(tmp_path_factory) -> Path:
    if not all((DEBIAN_FASHION_MNIST_DIR / f"{f}.gz").is_file() for f in FASHION_MNIST_FILES):
        pytest.skip("Debian package dataset-fashion-mnist not installed")
    return tmp_path_factory.mktemp("data")


@pytest.mark.parametrize(("ir", "even"), [(100, 60), (50, 120)])
def test_fashion_mnist_step_counts(fashion_mnist_dir, ir, even):
    datamodule = ImbalancedDataModule("fashion_mnist", str(fashion_mnist_dir), ir=ir)
    datamodule.prepare_data()
    datamodule.setup("fit")
    before_split = [t + v for t, v in zip(datamodule.train_class_counts,
                                          datamodule.val_class_counts, strict=True)]  # fmt: skip
    assert before_split == [even, 6000] * 5
    assert datamodule.val_class_counts == [even // 10, 600] * 5
    assert datamodule.test_class_counts == [1000 // ir, 1000] * 5
    assert datamodule.full_test_class_counts == [1000] * 10
    assert sum(before_split) == 5 * (even + 6000)  # IR=100: 30,300 images
    assert datamodule.input_shape == (1, 28, 28)
    assert datamodule.class_names[1] == "Trouser"


def test_whole_test_split_holds_the_protocol_test_split_and_the_rest(tmp_path):
    datamodule = _synthetic(tmp_path)
    source = load_source("synthetic", tmp_path)
    images, targets = next(iter(datamodule.eval_batches("full_test")))
    assert torch.equal(images, source.test.images[:100]) and torch.equal(
        targets, source.test.labels[:100]
    )
    kept = torch.cat([t for _, t in datamodule.eval_batches("test")])
    assert torch.bincount(kept).tolist() == [5, 50] * 5
    with pytest.raises(ValueError, match="'train'"):
        datamodule.eval_batches("train")


def test_batches_are_normalised_float_with_int64_targets(tmp_path):
    datamodule = _synthetic(tmp_path)
    source = load_source("synthetic", tmp_path)
    mean, std = channel_stats(source.train.images)
    assert torch.allclose(datamodule.mean, mean) and torch.allclose(datamodule.std, std)
    raw_images, raw_targets = next(iter(datamodule.val_dataloader()))
    images, targets = datamodule.transform_batch((raw_images, raw_targets), training=False)
    assert images.dtype == torch.float32 and targets.dtype == torch.int64
    expected = (raw_images.float() / 255 - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
    assert torch.allclose(images, expected, atol=1e-5)
    assert len(datamodule.train_dataloader()) == 16  # ceil(990 / 64)
    assert len(datamodule.val_dataloader()) == 2  # ceil(110 / 100)


def test_augment_changes_training_batches_only(tmp_path):
    datamodule = _synthetic(tmp_path, augment=True, channels=3)
    batch = next(iter(datamodule.val_dataloader()))
    plain, _ = datamodule.transform_batch(batch, training=False)
    augmented, _ = datamodule.transform_batch(batch, training=True)
    assert augmented.shape == plain.shape == (100, 3, 8, 8)
    assert not torch.equal(plain, augmented)
    no_augment = _synthetic(tmp_path, channels=3)
    assert torch.equal(no_augment.transform_batch(batch, training=True)[0], plain)


def test_setup_is_idempotent(tmp_path):
    datamodule = _synthetic(tmp_path)
    images = datamodule.train_dataloader().images
    datamodule.setup("fit")
    datamodule.setup("test")
    assert datamodule.train_dataloader().images is images


def test_data_seed_decides_the_subsample_and_the_training_seed_the_order(tmp_path):
    def first_val_images(seed):
        return _synthetic(tmp_path, seed=seed).val_dataloader().images

    assert torch.equal(first_val_images(0), first_val_images(0))
    assert not torch.equal(first_val_images(0), first_val_images(1))

    datamodule = _synthetic(tmp_path)

    def first_train_targets(training_seed):
        lightning.seed_everything(training_seed, verbose=False)
        return next(iter(datamodule.train_dataloader()))[1]

    assert torch.equal(first_train_targets(1), first_train_targets(1))
    assert not torch.equal(first_train_targets(1), first_train_targets(2))


class _RecordingModule(lightning.LightningModule):
    """Linear model that records the dtype and shape of every batch it sees."""

    def __init__(self, num_inputs: int, num_classes: int) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(num_inputs, num_classes)
        self.seen: list[tuple[str, torch.dtype, tuple[int, ...], torch.dtype]] = []

    def _record(self, stage: str, batch) -> torch.Tensor:
        images, targets = batch
        self.seen.append((stage, images.dtype, tuple(images.shape[1:]), targets.dtype))
        return torch.nn.functional.cross_entropy(self.layer(images.flatten(1)), targets)

    def training_step(self, batch, batch_idx):
        return self._record("train", batch)

    def validation_step(self, batch, batch_idx):
        self._record("val", batch)

    def test_step(self, batch, batch_idx):
        self._record("test", batch)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_lightning_trainer_runs_on_the_datamodule(tmp_path):
    datamodule = _synthetic(tmp_path)
    module = _RecordingModule(64, datamodule.num_classes)
    trainer = quiet_trainer(
        max_epochs=1,
        default_root_dir=tmp_path,
    )
    trainer.fit(module, datamodule=datamodule)
    trainer.test(module, datamodule=datamodule, verbose=False)
    stages = [stage for stage, *_ in module.seen]
    assert stages == ["train"] * 16 + ["val"] * 2 + ["test"] * 3
    assert {(dtype, shape, target) for _, dtype, shape, target in module.seen} == {
        (torch.float32, (1, 8, 8), torch.int64)
    }


def test_lightning_sets_the_epoch_of_the_training_batch_order(tmp_path):
    datamodule = _synthetic(tmp_path)
    trainer = quiet_trainer(
        max_epochs=3,
        limit_val_batches=0,
        default_root_dir=tmp_path,
    )
    module = _RecordingModule(64, datamodule.num_classes)
    targets_seen: list[torch.Tensor] = []
    module.on_train_batch_start = lambda batch, batch_idx: targets_seen.append(batch[1])
    lightning.seed_everything(5, verbose=False)
    trainer.fit(module, datamodule=datamodule)
    expected = datamodule.train_batches(5)
    for epoch in range(3):  # epoch e of the fit is epoch e of the seed's batch order
        expected.set_epoch(epoch)
        assert torch.equal(
            torch.cat(targets_seen[16 * epoch : 16 * (epoch + 1)]),
            torch.cat([targets for _, targets in expected]),
        )
    assert trainer.train_dataloader.sampler.epoch == 2


def test_the_image_shape_is_known_before_any_file_is_read(tmp_path):
    datamodule = ImbalancedDataModule("synthetic", str(tmp_path), channels=3, image_size=5)
    assert datamodule.input_shape == (3, 5, 5)
    datamodule.prepare_data()
    datamodule.setup("fit")
    assert datamodule.input_shape == (3, 5, 5)
    assert ImbalancedDataModule("cifar100", str(tmp_path / "none")).input_shape == (3, 32, 32)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"name": "mnist"}, r"unknown dataset 'mnist'; accepted: cifar10"),
        ({"protocol": "linear"}, r"unknown protocol 'linear'; accepted: binary"),
        ({"ir": 0.5}, r"ir=0.5 is out of range; accepted: a finite number >= 1"),
        ({"ir": float("inf")}, r"ir=inf is out of range"),
        ({"val_fraction": 1.5}, r"val_fraction=1.5 is out of range"),
        ({"batch_size": 0}, r"dataset.batch_size=0 is out of range"),
        ({"eval_batch_size": 2.5}, r"dataset.eval_batch_size=2.5 is not an integer"),
        ({"seed": -1}, r"dataset.seed=-1 is not a seed; accepted: an integer from 0 to 4294967295"),
        ({"colour": True}, r"dataset 'synthetic' has no option colour; accepted: channels"),
    ],
)
def test_bad_settings_stop_with_a_config_error(tmp_path, settings, message):
    arguments = {"name": "synthetic", "data_dir": str(tmp_path), **settings}
    with pytest.raises(ConfigError, match=message):
        ImbalancedDataModule(**arguments)


def test_cifar_missing_data_folder_is_a_config_error(tmp_path):
    datamodule = ImbalancedDataModule("cifar10", str(tmp_path / "nowhere"), download=False)
    with pytest.raises(ConfigError, match=r"not found in .*nowhere"):
        datamodule.prepare_data()


def test_binary_on_generated_cifar10_with_augmentation(tmp_path):
    write_fake_cifar10(tmp_path, per_class_train=20, per_class_test=10)
    datamodule = ImbalancedDataModule(
        "cifar10", str(tmp_path), protocol="binary", ir=None, minority_class=3, verify=False,
        download=False, augment=True, batch_size=50,
    )  # fmt: skip
    datamodule.prepare_data()
    datamodule.setup("fit")
    assert datamodule.train_class_counts == [162, 18]  # 180 vs 20, minus 18 and 2 for validation
    assert datamodule.test_class_counts == [90, 10]
    assert datamodule.full_test_class_counts == [90, 10]  # binary at the natural ratio: the same
    assert datamodule.class_names == ["not_cat", "cat"]
    assert datamodule.minority_classes == [1]
    images, targets = datamodule.transform_batch(next(iter(datamodule.train_dataloader())), True)
    assert images.shape == (50, 3, 32, 32) and images.dtype == torch.float32
    assert set(targets.tolist()) <= {0, 1}


def test_superclass_pair_on_generated_cifar100(tmp_path):
    write_fake_cifar100(tmp_path, per_class_train=20, per_class_test=10)
    datamodule = ImbalancedDataModule(
        "cifar100",
        str(tmp_path),
        protocol="superclass_pair",
        ir=None,
        pair="tree_1",
        minority_fraction=0.2,
        verify=False,
        download=False,
    )
    datamodule.prepare_data()
    datamodule.setup("fit")
    # 20 maple vs round(20 * 0.2 / 0.8) = 5 oak; validation 2 and 1 (0.5 rounds up)
    assert datamodule.train_class_counts == [18, 4]
    assert datamodule.val_class_counts == [2, 1]
    assert datamodule.test_class_counts == [10, 3]  # 2.5 rounds up
    assert datamodule.full_test_class_counts == [10, 10]  # both classes whole
    assert datamodule.class_names == ["maple_tree", "oak_tree"]
    assert datamodule.input_shape == (3, 32, 32)


def _compose(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides))


@pytest.mark.parametrize("dataset", ["fashion_mnist", "cifar10", "cifar100", "synthetic"])
def test_dataset_configs_instantiate(tmp_path, dataset):
    config = _compose(f"dataset={dataset}", "ir=50", f"paths.data_dir={tmp_path}")
    datamodule = instantiate(config.dataset)
    assert isinstance(datamodule, ImbalancedDataModule)
    assert datamodule.name == dataset
    assert (datamodule.protocol, datamodule.ir, datamodule.seed) == ("step", 50.0, 0)
    assert datamodule.data_dir == tmp_path


@pytest.mark.parametrize("model", ["fmnist_cnn", "simple_cnn", "resnet18", "mlp"])
def test_model_configs_build_from_the_datamodule_shape(tmp_path, model):
    config = _compose("dataset=synthetic", f"model={model}", "ir=10", f"paths.data_dir={tmp_path}")
    datamodule = instantiate(config.dataset)
    datamodule.setup("fit")
    network = instantiate(config.model)(
        input_shape=datamodule.input_shape, num_classes=datamodule.num_classes
    )
    images, _ = datamodule.transform_batch(next(iter(datamodule.val_dataloader())), False)
    assert network(images[:4]).shape == (4, 10)
