"""What a finished run keeps of its checkpoints (``checkpoints``), and ``imbloss.load_run``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

import imbloss
from imbloss.errors import ConfigError, RunFileError
from imbloss.evaluation import test_predictions as predict_test_splits
from imbloss.pipeline import build_datamodule, train
from imbloss.runs.layout import RunFolder

from conftest import FAST_OVERRIDES

TWO_EPOCHS = (*FAST_OVERRIDES, "trainer.max_epochs=2")


def _run(compose_train_cfg, tmp_path: Path, *overrides: str) -> RunFolder:
    cfg = compose_train_cfg(*TWO_EPOCHS, *overrides)
    train(cfg)
    return RunFolder(tmp_path / "run")


def test_a_finished_run_keeps_the_selected_weights_only(compose_train_cfg, tmp_path: Path) -> None:
    folder = _run(compose_train_cfg, tmp_path)
    assert folder.metrics.is_file()
    assert sorted(p.name for p in folder.best_checkpoint.parent.iterdir()) == ["best.ckpt"]
    best = torch.load(folder.best_checkpoint, weights_only=True)
    assert "optimizer_states" not in best  # no Adam moments: weights and bookkeeping only
    assert any(key.startswith("net.") for key in best["state_dict"])


def test_checkpoints_all_keeps_the_last_state_to_continue_from(
    compose_train_cfg, tmp_path: Path
) -> None:
    folder = _run(compose_train_cfg, tmp_path, "checkpoints=all")
    last = torch.load(folder.last_checkpoint, weights_only=True)
    assert "optimizer_states" in last and folder.best_checkpoint.is_file()


def test_checkpoints_none_keeps_figures_predictions_and_logs(
    compose_train_cfg, tmp_path: Path
) -> None:
    folder = _run(compose_train_cfg, tmp_path, "checkpoints=none")
    assert folder.metrics.is_file() and folder.predictions.is_file() and folder.curves.is_file()
    assert not folder.best_checkpoint.parent.exists()


def test_bad_checkpoint_policy_is_refused_before_training(
    compose_train_cfg, tmp_path: Path
) -> None:
    cfg = compose_train_cfg(*TWO_EPOCHS, "checkpoints=keep")
    with pytest.raises(ConfigError, match=r"checkpoints='keep' .*accepted: all, best, none"):
        train(cfg)
    assert not (tmp_path / "run").exists()


def test_load_run_predicts_what_the_run_wrote(compose_train_cfg, tmp_path: Path) -> None:
    cfg = compose_train_cfg(*TWO_EPOCHS, "checkpoints=all")
    train(cfg)
    folder = RunFolder(tmp_path / "run")
    task = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    OmegaConf.save(task, folder.config)  # what Hydra writes beside a run from the command line
    written = np.load(folder.predictions)
    datamodule = build_datamodule(cfg)
    for weights, key in (("best", "full_probs"), ("last", "last_full_probs")):
        model = imbloss.load_run(folder.path, weights)
        assert not model.training
        _, probs = predict_test_splits(model.net, datamodule, torch.device("cpu"))["full_test"]
        np.testing.assert_allclose(probs.numpy(), written[key], rtol=0, atol=1e-6)
    with pytest.raises(ConfigError, match="accepted: best, last"):
        imbloss.load_run(folder.path, "first")
    folder.last_checkpoint.unlink()
    with pytest.raises(RunFileError, match=r"last\.ckpt does not exist"):
        imbloss.load_run(folder.path, "last")
