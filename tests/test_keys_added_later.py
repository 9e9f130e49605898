"""Keys added to the configuration after runs were made (``scheduler``, ``shots``,
``loss.reduction``): a folder claimed before them is the same job at their default, and the report
reads runs made before and after them alike."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from omegaconf import DictConfig, OmegaConf

from imbloss.report.runs import load_runs
from imbloss.runs.folder import claim_folder, folder_conflict
from test_report import write_run

TINY = ("dataset=synthetic", "model=mlp", "model.hidden=[16]", "ir=10")


def test_a_folder_claimed_before_scheduler_and_shots_existed_is_the_same_job(
    compose_train_cfg: Callable[..., DictConfig], tmp_path: Path
) -> None:
    new = OmegaConf.to_container(compose_train_cfg(*TINY), resolve=False)
    old = {key: value for key, value in new.items() if key not in ("scheduler", "shots")}
    claim_folder(tmp_path / "job", old)  # as the committed runs were claimed, before both keys
    assert folder_conflict(tmp_path / "job", new) is None
    scheduled = OmegaConf.to_container(
        compose_train_cfg(*TINY, "scheduler=warmup_multistep"), resolve=False
    )
    assert "(differs in: scheduler)" in folder_conflict(tmp_path / "job", scheduled)


@pytest.mark.parametrize(("reduction", "conflict"), [("weighted_mean", False), ("mean", True)])
def test_a_wce_folder_claimed_before_reduction_existed_is_the_same_job_at_weighted_mean(
    compose_train_cfg: Callable[..., DictConfig], tmp_path: Path, reduction: str, conflict: bool
) -> None:
    new = OmegaConf.to_container(
        compose_train_cfg(*TINY, "loss=wce", f"loss.reduction={reduction}"), resolve=False
    )
    old = {**new, "loss": {k: v for k, v in new["loss"].items() if k != "reduction"}}
    claim_folder(tmp_path / "job", old)
    message = folder_conflict(tmp_path / "job", new)
    assert (message is not None) == conflict
    if conflict:
        assert "(differs in: loss.reduction)" in message


def test_the_report_reads_a_default_reduction_as_a_run_made_before_it(tmp_path: Path) -> None:
    write_run(tmp_path, "before", loss="wce", hparams={"scale": 0.5})
    write_run(tmp_path, "after", loss="wce", hparams={"scale": 0.5, "reduction": "weighted_mean"})
    write_run(tmp_path, "mean", loss="wce", hparams={"scale": 0.5, "reduction": "mean"})
    hparams = load_runs(tmp_path).set_index("run_dir")["hparams"]
    assert hparams["before"] == hparams["after"] == '{"scale": 0.5}'
    assert hparams["mean"] == '{"reduction": "mean", "scale": 0.5}'
