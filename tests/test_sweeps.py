"""Tuning grids as sweeps (conf/sweep, imbloss.multirun.sweeps) and the experiment presets
(conf/experiment).

The grids are the first source's (Du et al. 2021, Sec. IV-B/C): WCE's minority weight 19 values,
focal gamma 7, FL(alpha) 19 x 7 = 133, LDAM and WLDAM C 10 each; the presets carry Sec. IV-B's
training settings and the second source's (Sec. III-2).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from omegaconf import DictConfig, OmegaConf

from imbloss.errors import ConfigError
from imbloss.losses import available_losses, loss_spec
from imbloss.multirun.sweeps import format_grid_value, grid_values, loss_grid, register_resolvers

from conftest import CONF_DIR

WCE_SCALES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10]
GAMMAS = [0, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0]
MARGINS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
SWEEP_SIZES = {"wce": 19, "focal": 7, "focal_alpha": 133, "ldam": 10, "wldam": 10}


@pytest.fixture(autouse=True)
def _resolvers() -> None:
    register_resolvers()


def _sweep_points(cfg: DictConfig) -> dict[str, list[float]]:
    params = OmegaConf.to_container(cfg.hydra.sweeper.params, resolve=True)
    return {key: [float(v) for v in value.split(",")] for key, value in params.items()}


@pytest.mark.parametrize(
    ("loss", "hparam", "expected"),
    [
        ("wce", "scale", WCE_SCALES),
        ("focal", "gamma", GAMMAS),
        ("focal_alpha", "scale", WCE_SCALES),
        ("focal_alpha", "gamma", GAMMAS),
        ("ldam", "max_m", MARGINS),
        ("wldam", "max_m", MARGINS),
    ],
)
def test_loss_grid_is_the_sources_grid_in_hydra_sweep_syntax(
    loss: str, hparam: str, expected: list[float]
) -> None:
    text = loss_grid(loss, hparam)
    assert [float(v) for v in text.split(",")] == expected
    assert " " not in text and "0.30000000000000004" not in text


def test_grid_values_are_written_so_hydra_reads_floats_back() -> None:
    assert format_grid_value(1.0) == "1.0"
    assert format_grid_value(10) == "10.0"
    assert format_grid_value(0.1 * 3) == "0.3"
    assert format_grid_value(1e-5) == "1e-05"


def test_limit_keeps_the_first_values_and_rejects_non_sizes() -> None:
    assert grid_values("wce", "scale", 2) == (0.1, 0.2)
    assert loss_grid("focal", "gamma", 3) == "0.0,0.1,0.2"
    assert grid_values("ldam", "max_m", None) == tuple(MARGINS)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ConfigError, match=r"sweep\.limit=.*accepted: an integer >= 1"):
            grid_values("wce", "scale", bad)


def test_unknown_grid_names_the_accepted_ones() -> None:
    with pytest.raises(ConfigError, match=r"'wce' has no tuning grid for 'gamma'; accepted: scale"):
        loss_grid("wce", "gamma")
    with pytest.raises(ConfigError, match=r"no tuning grid for 'tau'.*declares no grid"):
        loss_grid("la", "tau")
    with pytest.raises(ConfigError, match="unknown loss 'nope'"):
        loss_grid("nope", "scale")


def test_every_loss_with_a_grid_has_a_sweep_config_and_no_other() -> None:
    sweeps = sorted(p.stem for p in (CONF_DIR / "sweep").glob("*.yaml"))
    assert sweeps == sorted(name for name in available_losses() if loss_spec(name).grid)
    assert sweeps == sorted(SWEEP_SIZES)


@pytest.mark.parametrize(("sweep", "size"), sorted(SWEEP_SIZES.items()))
def test_sweep_config_sets_the_loss_and_expands_to_the_full_grid(
    compose_train_cfg: Callable[..., DictConfig], sweep: str, size: int
) -> None:
    cfg = compose_train_cfg(f"sweep={sweep}")
    assert cfg.loss.name == sweep
    points = _sweep_points(cfg)
    assert set(points) == {f"loss.{name}" for name in loss_spec(sweep).grid}
    assert len(list(itertools.product(*points.values()))) == size == loss_spec(sweep).grid_size
    for key, values in points.items():
        assert values == list(loss_spec(sweep).grid[key.removeprefix("loss.")])


def test_sweep_limit_cuts_every_hyperparameter(
    compose_train_cfg: Callable[..., DictConfig],
) -> None:
    points = _sweep_points(compose_train_cfg("sweep=focal_alpha", "sweep.limit=2"))
    assert points == {"loss.scale": [0.1, 0.2], "loss.gamma": [0.0, 0.1]}


# (dataset, protocol, model class, optimizer, lr, weight decay, batch size, epochs) per preset
FMNIST_STEP = ("fashion_mnist", "step", "FashionMNISTCNN", "Adam", 0.001, 0.0, 500, 200)
# fmt: off
PRESETS = {
    "fmnist_step": FMNIST_STEP,
    "fmnist_label_noise": FMNIST_STEP,
    "cifar10_step": ("cifar10", "step", "CifarResNet18", "Adam", 0.001, 0.0, 500, 200),
    "cifar10_binary": ("cifar10", "binary", "SimpleCNN", "Adam", 0.001, 0.0, 500, 200),
    "cifar100_binary": ("cifar100", "binary", "SimpleCNN", "Adam", 0.001, 0.0, 500, 200),
    "cifar100_pairs": ("cifar100", "superclass_pair", "MLP", "SGD", 0.1, 0.0, 128, 300),
    "cifar100_pairs_trees": ("cifar100", "superclass_pair", "MLP", "SGD", 0.1, 0.0, 128, 300),
    "cifar10_lt": ("cifar10", "exp", "CifarResNet18", "Adam", 0.001, 0.0, 500, 200),
    "cifar10_lt_sgd": ("cifar10", "exp", "ResNet32", "SGD", 0.1, 2e-4, 128, 200),
    "cifar100_lt_sgd": ("cifar100", "exp", "ResNet32", "SGD", 0.1, 2e-4, 128, 200),
    "fmnist_binary": ("fashion_mnist", "binary", "MLP", "SGD", 0.1, 0.0, 128, 300),
}
# fmt: on


def test_every_experiment_preset_is_tested() -> None:
    assert sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml")) == sorted(PRESETS)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_experiment_preset_carries_the_sources_settings(
    compose_train_cfg: Callable[..., DictConfig], preset: str
) -> None:
    cfg = compose_train_cfg(f"experiment={preset}")
    dataset, protocol, model, optimizer, lr, weight_decay, batch_size, epochs = PRESETS[preset]
    assert (cfg.dataset.name, cfg.dataset.protocol) == (dataset, protocol)
    assert cfg.model._target_.rsplit(".", 1)[-1] == model
    assert cfg.optimizer._target_ == f"torch.optim.{optimizer}"
    assert (cfg.optimizer.lr, cfg.optimizer.weight_decay) == (lr, weight_decay)
    assert (cfg.dataset.batch_size, cfg.trainer.max_epochs) == (batch_size, epochs)
    assert cfg.experiment.name == preset


@pytest.mark.parametrize(
    ("preset", "ir", "keys"),
    [
        ("fmnist_step", 100, {}),
        ("fmnist_label_noise", 100, {"label_noise": 0.0}),
        ("cifar10_binary", None, {"minority_class": 1}),
        ("cifar100_binary", None, {"minority_class": 19}),
        ("cifar100_pairs", None, {"pair": "household", "minority_fraction": 0.2}),
        ("cifar100_pairs_trees", None, {"pair": "tree_1", "minority_fraction": 0.2}),
        ("cifar10_lt", 100, {"augment": True}),
        ("fmnist_binary", None, {"minority_class": 6}),
    ],
)
def test_experiment_preset_protocol_keys(
    compose_train_cfg: Callable[..., DictConfig], preset: str, ir: float | None, keys: dict
) -> None:
    """Binary tasks keep every sample (IR 9 / 99) and pairs get their ratio from the fraction:
    both need ``ir: null`` from the preset to win over the default IR of ``conf/train.yaml``."""
    cfg = compose_train_cfg(f"experiment={preset}")
    assert cfg.ir == ir
    assert {key: cfg.dataset[key] for key in keys} == keys


def test_pair_presets_use_the_second_sources_widths(
    compose_train_cfg: Callable[..., DictConfig],
) -> None:
    assert list(compose_train_cfg("experiment=cifar100_pairs").model.hidden) == [1000, 300, 100]
    trees = compose_train_cfg("experiment=cifar100_pairs_trees")
    assert list(trees.model.hidden) == [1000, 100, 10]
    assert (trees.optimizer.momentum, trees.dataset.batch_size) == (0.0, 128)


def test_presets_leave_loss_and_ir_free_and_combine_with_a_sweep(
    compose_train_cfg: Callable[..., DictConfig],
) -> None:
    cfg = compose_train_cfg("experiment=fmnist_step", "loss=focal_alpha", "ir=200")
    assert (cfg.loss.name, cfg.ir, cfg.dataset.name) == ("focal_alpha", 200, "fashion_mnist")
    cfg = compose_train_cfg("experiment=cifar10_binary", "sweep=wce")
    assert (cfg.loss.name, cfg.dataset.protocol, cfg.trainer.max_epochs) == ("wce", "binary", 200)
    assert len(_sweep_points(cfg)["loss.scale"]) == 19
