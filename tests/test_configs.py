"""Every option of every config group composes from the real configs and instantiates."""

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from lightning import LightningDataModule, Trainer
from omegaconf import DictConfig

from imbloss.losses import available_losses
from imbloss.pipeline import _loss_hparams

from conftest import CONF_DIR


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def test_loss_configs_are_exactly_the_registry() -> None:
    assert _options("loss") == available_losses()


@pytest.mark.parametrize("loss", _options("loss"))
def test_every_loss_config_builds_and_evaluates(
    compose_train_cfg: Callable[..., DictConfig], loss: str
) -> None:
    cfg = compose_train_cfg(f"loss={loss}")
    assert cfg.loss.name == loss
    loss_fn = instantiate(cfg.loss, class_counts=[500, 5, 500, 5])
    logits = torch.randn(8, 4, requires_grad=True)
    value = loss_fn(logits, torch.tensor([0, 1, 2, 3, 0, 0, 2, 2]))
    assert value.ndim == 0 and torch.isfinite(value)
    value.backward()
    assert torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("dataset", _options("dataset"))
def test_every_dataset_config_instantiates(
    compose_train_cfg: Callable[..., DictConfig], dataset: str
) -> None:
    cfg = compose_train_cfg(f"dataset={dataset}")
    datamodule = instantiate(cfg.dataset)
    assert isinstance(datamodule, LightningDataModule)
    assert cfg.dataset.name == dataset
    assert cfg.dataset.data_dir == cfg.paths.data_dir


@pytest.mark.parametrize("model", _options("model"))
def test_every_model_config_builds_a_network(
    compose_train_cfg: Callable[..., DictConfig], model: str
) -> None:
    cfg = compose_train_cfg(f"model={model}")
    net = instantiate(cfg.model)(input_shape=(3, 32, 32), num_classes=7)
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 7)


@pytest.mark.parametrize("experiment", _options("experiment"))
def test_every_experiment_composes(
    compose_train_cfg: Callable[..., DictConfig], experiment: str
) -> None:
    cfg = compose_train_cfg(f"experiment={experiment}")
    assert cfg.trainer.max_epochs >= 1
    assert cfg.dataset.name in _options("dataset")


def test_trainer_callbacks_and_loggers_instantiate(
    compose_train_cfg: Callable[..., DictConfig], tmp_path: Path
) -> None:
    cfg = compose_train_cfg("logger=csv")
    callbacks = list(instantiate(cfg.callbacks).values())
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=False)
    assert isinstance(trainer, Trainer)
    assert trainer.max_epochs == cfg.trainer.max_epochs
    assert trainer.checkpoint_callback.monitor == "val/gmean"
    assert trainer.checkpoint_callback.mode == "max"


def test_defaults_are_the_papers_fashion_mnist_setting(
    compose_train_cfg: Callable[..., DictConfig],
) -> None:
    cfg = compose_train_cfg()
    assert (cfg.loss.name, cfg.dataset.name, cfg.dataset.protocol, cfg.ir) == (
        "pf",
        "fashion_mnist",
        "step",
        100,
    )
    assert cfg.model._target_.endswith("FashionMNISTCNN")
    assert cfg.dataset.batch_size == 500
    assert cfg.optimizer._target_ == "torch.optim.Adam"
    assert (cfg.optimizer.lr, cfg.optimizer.weight_decay) == (0.001, 0.0)


@pytest.mark.parametrize(("max_epochs", "drw_epoch"), [(200, 160), (15, 12), (1, 0)])
def test_wldam_reweights_from_four_fifths_of_the_schedule(
    compose_train_cfg: Callable[..., DictConfig], max_epochs: int, drw_epoch: int
) -> None:
    cfg = compose_train_cfg("loss=wldam", f"trainer.max_epochs={max_epochs}")
    assert cfg.loss.drw_epoch == drw_epoch
    assert instantiate(cfg.loss, class_counts=[100, 10]).drw_epoch == drw_epoch
    assert _loss_hparams(cfg.loss)["drw_epoch"] == drw_epoch  # metrics.json's hparams, resolved


@pytest.mark.parametrize("sampler", _options("sampler"))
def test_every_sampler_config_serves_training_batches(
    compose_train_cfg: Callable[..., DictConfig], sampler: str
) -> None:
    cfg = compose_train_cfg("dataset=synthetic", f"sampler={sampler}", "trainer.max_epochs=5")
    datamodule = instantiate(cfg.dataset)
    datamodule.prepare_data()
    datamodule.setup("fit")
    summary = datamodule.summary()
    assert summary["sampler"] == sampler
    assert len(datamodule.train_batches(0)) == summary["steps_per_epoch"]
    if sampler == "drs":  # the schedule length comes from the trainer: epoch floor(0.8 * 5)
        assert summary["sampler_options"]["max_epochs"] == 5
        assert datamodule.train_sampler(0).switch_epoch == 4


def test_label_noise_experiment_sweeps_four_losses_and_four_noise_levels(
    compose_train_cfg: Callable[..., DictConfig],
) -> None:
    cfg = compose_train_cfg("experiment=fmnist_label_noise")
    assert (cfg.dataset.name, cfg.dataset.protocol, cfg.ir) == ("fashion_mnist", "step", 100)
    params = cfg.hydra.sweeper.params
    assert params["loss"] == "ce,wce,focal_alpha,pf"
    assert params["dataset.label_noise"] == "0.0,0.1,0.2,0.4"
