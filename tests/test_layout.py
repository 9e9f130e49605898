"""The run-folder contract: the configs put the logger's and the checkpoint's files where
imbloss.runs.layout says, and a run folder is recognised by any of its three files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig

from imbloss.runs.layout import BEST_CHECKPOINT_FILE, CURVES_FILE, LAST_CHECKPOINT_FILE, RunFolder


def test_configs_write_where_the_contract_reads(
    compose_train_cfg: Callable[..., DictConfig],
) -> None:
    cfg = compose_train_cfg()
    run = Path(cfg.paths.output_dir)
    checkpoint = cfg.callbacks.model_checkpoint
    assert Path(checkpoint.dirpath) / f"{checkpoint.filename}.ckpt" == run / BEST_CHECKPOINT_FILE
    last = cfg.callbacks.last_checkpoint
    assert Path(last.dirpath) / f"{last.filename}.ckpt" == run / LAST_CHECKPOINT_FILE
    csv = cfg.logger.csv
    assert Path(csv.save_dir) / csv.name / str(csv.version) / "metrics.csv" == run / CURVES_FILE
    assert RunFolder(run).best_checkpoint == run / BEST_CHECKPOINT_FILE


def test_a_run_folder_is_recognised_by_any_of_its_files(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path)
    assert not folder.is_run()
    folder.config.parent.mkdir()
    folder.config.write_text("loss: {name: pf}\n")
    assert folder.is_run()
    assert (folder.metrics.name, folder.predictions.name, folder.error.name) == (
        "metrics.json",
        "predictions.npz",
        "error.json",
    )
