"""Shared fixtures: composing the real configs, and running the real command line."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from imbloss.multirun.sweeps import register_resolvers

REPO_ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = REPO_ROOT / "conf"
FASHION_MNIST_DEB = Path("/usr/share/datasets/fashion-mnist")
register_resolvers()  # as train.py does before Hydra composes

# A tiny, fast configuration: the synthetic dataset, one epoch, no progress bar.
FAST_OVERRIDES = (
    "dataset=synthetic",
    "model=fmnist_cnn",
    "trainer.max_epochs=1",
    "ir=10",
    "trainer.enable_progress_bar=false",
)

requires_fashion_mnist = pytest.mark.skipif(
    not FASHION_MNIST_DEB.is_dir(),
    reason=f"Fashion-MNIST files not installed in {FASHION_MNIST_DEB} (apt-get install "
    "dataset-fashion-mnist)",
)


@pytest.fixture
def compose_train_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """Compose ``conf/train.yaml`` with overrides, outputs and data under ``tmp_path``.

    The Hydra config is made current, so ``imbloss.pipeline.train`` runs in-process.
    """

    def _compose(*overrides: str) -> DictConfig:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
        with open_dict(cfg):
            cfg.paths.root_dir = str(REPO_ROOT)
            cfg.paths.data_dir = str(tmp_path / "data")
            cfg.paths.log_dir = str(tmp_path / "logs")
            cfg.paths.output_dir = str(tmp_path / "run")
            cfg.hydra.runtime.output_dir = str(tmp_path / "run")
            cfg.hydra.job.num = 0
        HydraConfig.instance().set_config(cfg)
        return cfg

    yield _compose
    GlobalHydra.instance().clear()


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Environment for a command-line run whose logs and data stay under ``tmp_path``."""
    env = dict(os.environ)
    env.update(
        IMBLOSS_LOG_DIR=str(tmp_path / "logs"),
        IMBLOSS_DATA_DIR=str(tmp_path / "data"),
        WANDB_DIR=str(tmp_path / "wandb"),
        PYTHONUNBUFFERED="1",
        **extra,
    )
    env.pop("WANDB_API_KEY", None)
    return env


def run_train(
    args: Sequence[str], tmp_path: Path, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``python train.py ARGS`` from the repository root; logs land in ``tmp_path/logs``."""
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "train.py"), *args],
        cwd=REPO_ROOT,
        env=cli_env(tmp_path, **extra_env),
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture
def run_cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """:func:`run_train` with the test's ``tmp_path``."""

    def _run(args: Sequence[str], **extra_env: str) -> subprocess.CompletedProcess[str]:
        return run_train(args, tmp_path, **extra_env)

    return _run
