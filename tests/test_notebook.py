"""``notebooks/report.ipynb`` runs top to bottom on a small report folder and shows its content."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from omegaconf import OmegaConf

from imbloss.pipeline import train
from imbloss.report import build_report
from test_report import write_run

from conftest import FAST_OVERRIDES, REPO_ROOT

NOTEBOOK = REPO_ROOT / "notebooks" / "report.ipynb"


def _outputs(notebook: nbformat.NotebookNode, mime: str) -> list[str]:
    return [
        output["data"][mime]
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if mime in output.get("data", {})
    ]


def _finished_run(compose_train_cfg, tmp_path: Path) -> Path:
    """A synthetic run trained in-process, with the configuration Hydra would write beside it."""
    cfg = compose_train_cfg(*FAST_OVERRIDES, "model=mlp", "model.hidden=[16]")
    train(cfg)
    task = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    OmegaConf.save(task, tmp_path / "run" / ".hydra" / "config.yaml")
    return tmp_path / "run"


def test_notebook_shows_every_table_and_plot_of_a_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compose_train_cfg
) -> None:
    model_run = _finished_run(compose_train_cfg, tmp_path)
    for ir in (10, 100):
        write_run(tmp_path / "runs", f"pf{ir}", loss="pf", ir=ir, recall=(0.61, 0.9, 0.7, 0.8))
        write_run(tmp_path / "runs", f"ce{ir}", loss="ce", ir=ir, recall=(0.3, 0.9, 0.2, 0.8))
    report = build_report(tmp_path / "runs", tmp_path / "report")
    plots = sorted((tmp_path / "report" / "plots").glob("*.png"))
    assert len(plots) == 8  # G-mean with intervals, 2 batch diagnostics, G-mean vs IR, 2 x 2 more

    monkeypatch.setenv("IMBLOSS_REPORT_DIR", str(report.out_dir))
    monkeypatch.delenv("IMBLOSS_RUNS_DIR", raising=False)
    monkeypatch.setenv("IMBLOSS_MODEL_RUN", str(model_run))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    ).execute()

    markdown = "\n".join(_outputs(notebook, "text/markdown"))
    for name in (
        "training_time",
        "gmean_auc_synthetic_step",
        "class_acc_synthetic_step",
        "all_cells",
        "gmean_auc_synthetic_step_full",
        "all_cells_full",
        "paired_pf_synthetic_step_MLP",
    ):
        assert (report.out_dir / f"{name}.md").read_text().strip() in markdown
    assert "**65.50** [n=1]" in markdown  # PF-loss minority accuracy (0.61 + 0.7) / 2, best
    assert len(_outputs(notebook, "image/png")) == len(plots)
    printed = "".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    assert f"report folder: {report.out_dir}" in printed and "ok    4" in printed
    assert "figures of the selected weights; paired comparisons against: pf" in printed
    predicted = re.search(r"predicted: \[([\d, ]+)\]\ntrue: +\[([\d, ]+)\]", printed)
    assert predicted is not None  # the run's model, loaded by imbloss.load_run, on 8 test images
    assert [len(group.split(",")) for group in predicted.groups()] == [8, 8]
