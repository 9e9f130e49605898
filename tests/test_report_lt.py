"""The report's long-tail tables: top-1 error and many/medium/few-shot accuracy per cell, and our
cells beside the papers' figures that a preset lists (experiment.published)."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pytest
import yaml

from imbloss.report.build import build_report, load_report
from test_report import write_run

# four classes; 500 / 50 / 30 / 10 training images: many [0], medium [1, 2], few [3]
GROUPS = {"many": [0], "medium": [1, 2], "few": [3]}
CE_100 = {"source": "Cao et al. 2019, Table 2", "row": "ERM", "loss": "ce", "ir": 100,
          "top1_error": 29.64}  # fmt: skip
WLDAM_100 = {**CE_100, "row": "LDAM-DRW", "loss": "wldam", "top1_error": 22.97}
WLDAM_10 = {**WLDAM_100, "ir": 10, "top1_error": 11.84}
PUBLISHED = [CE_100, WLDAM_100, WLDAM_10]


def write_lt_run(
    root: Path,
    name: str,
    *,
    loss: str,
    seed: int,
    recall: Sequence[float],
    ir: float = 100,
    published: list[dict] | None = None,
    shots: bool = True,
) -> Path:
    """A finished exp-protocol run (CIFAR-10, ResNet32) with the shot figures of ``recall`` on a
    balanced test set (``shots=False``: a run made before they existed) and the preset's
    ``published`` records in its configuration."""
    run = write_run(root, name, loss=loss, seed=seed, recall=recall, ir=ir, dataset="cifar10",
                    protocol="exp", model="ResNet32")  # fmt: skip
    config_path = run / ".hydra" / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["experiment"] = {"name": "cifar10_lt_sgd", "published": published or []}
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    metrics = json.loads((run / "metrics.json").read_text())
    if shots:
        for section in (
            metrics,
            metrics["full_test"],
            metrics["last"],
            metrics["last"]["full_test"],
        ):
            values = section["per_class_recall"]
            for group, classes in GROUPS.items():
                section[f"{group}_shot_acc"] = statistics.mean(values[j] for j in classes)
            section["top1_error"] = 1 - section["acc"]
    (run / "metrics.json").write_text(json.dumps(metrics))
    return run


@pytest.fixture
def lt_runs(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    recalls = {  # (loss, seed) -> per-class recall
        ("ce", 0): (0.9, 0.7, 0.6, 0.2),
        ("ce", 1): (0.9, 0.8, 0.5, 0.0),
        ("wldam", 0): (0.8, 0.8, 0.7, 0.5),
        ("wldam", 1): (0.8, 0.7, 0.7, 0.6),
    }
    for (loss, seed), recall in recalls.items():
        write_lt_run(
            root, f"{loss}{seed}", loss=loss, seed=seed, recall=recall, published=PUBLISHED
        )
    # another recipe in the same family (same dataset, protocol, model): no published figures
    write_lt_run(root, "other", loss="ce", seed=2, recall=(0.1, 0.1, 0.1, 0.1))
    return root


def _mean_error(recalls: Sequence[Sequence[float]]) -> float:
    return statistics.mean(1 - statistics.mean(r) for r in recalls)


def test_the_shot_table_has_each_cells_error_and_group_means(lt_runs: Path, tmp_path: Path) -> None:
    build_report(lt_runs, out_dir=tmp_path / "report", formats=("md", "csv"))
    report = load_report(tmp_path / "report")
    cells = report.tables["shot_acc_cifar10_exp"].set_index(["loss", "metric"])
    # ce: seeds 0 and 1, and the other recipe's seed 2 (this table pools the family's runs)
    ce = [(0.9, 0.7, 0.6, 0.2), (0.9, 0.8, 0.5, 0.0), (0.1, 0.1, 0.1, 0.1)]
    assert cells.loc[("ce", "top1_error"), "mean"] == pytest.approx(_mean_error(ce))
    assert cells.loc[("ce", "few_shot_acc"), "mean"] == pytest.approx((0.2 + 0.0 + 0.1) / 3)
    assert cells.loc[("wldam", "medium_shot_acc"), "mean"] == pytest.approx((0.75 + 0.7) / 2)
    assert cells.loc[("ce", "top1_error"), "n"] == 3
    # the lowest error is the best, the highest accuracy
    assert bool(cells.loc[("wldam", "top1_error"), "best"])
    assert not bool(cells.loc[("ce", "top1_error"), "best"])
    assert bool(cells.loc[("wldam", "few_shot_acc"), "best"])
    markdown = report.markdown["shot_acc_cifar10_exp"]
    assert "| Top-1 error" in markdown and "Few" in markdown and "(the lowest error)" in markdown


def test_our_cells_sit_beside_the_published_figures(lt_runs: Path, tmp_path: Path) -> None:
    build_report(lt_runs, out_dir=tmp_path / "report", formats=("md", "csv"))
    frame = pd.read_csv(tmp_path / "report" / "published_cifar10_exp.csv")
    rows = frame.set_index(["loss", "ir"])
    assert list(zip(frame["loss"], frame["ir"], strict=True)) == [
        ("wldam", 10), ("ce", 100), ("wldam", 100),
    ]  # fmt: skip
    # only the preset's runs: ce seeds 0 and 1, not the other recipe's run
    ce = _mean_error([(0.9, 0.7, 0.6, 0.2), (0.9, 0.8, 0.5, 0.0)])
    assert rows.loc[("ce", 100), "n"] == 2
    assert rows.loc[("ce", 100), "top1_error"] == pytest.approx(ce)
    assert rows.loc[("ce", 100), "published"] == 29.64
    assert rows.loc[("ce", 100), "diff_pp"] == pytest.approx(100 * ce - 29.64)
    wldam = _mean_error([(0.8, 0.8, 0.7, 0.5), (0.8, 0.7, 0.7, 0.6)])
    assert rows.loc[("wldam", 100), "diff_pp"] == pytest.approx(100 * wldam - 22.97)
    assert rows.loc[("wldam", 100), "few_shot_acc"] == pytest.approx(0.55)
    # a published cell without runs: a dash, never a number
    assert rows.loc[("wldam", 10), "n"] == 0 and pd.isna(rows.loc[("wldam", 10), "top1_error"])
    markdown = (tmp_path / "report" / "published_cifar10_exp.md").read_text()
    body = [line for line in markdown.splitlines() if line.startswith("| ") and "IR" not in line]
    split = [[c.strip() for c in line.split("|")[1:-1]] for line in body]
    cells = {tuple(row[:2]): row[2:] for row in split}
    published, ours, difference, many, medium, few, source = cells[("CE", "100")]
    assert (published, difference, source) == ("29.64", f"{100 * ce - 29.64:+.2f}",
                                               "Cao et al. 2019, Table 2 (ERM)")  # fmt: skip
    assert ours.startswith(f"{100 * ce:.2f} ± ") and ours.endswith("[n=2]")
    assert (many, medium, few) == ("90.00", "65.00", "10.00")  # (0.7 + 0.6 + 0.8 + 0.5) / 4
    assert cells[("WLDAM", "10")][1:3] == ["— [n=0]", "—"]


def test_runs_made_before_the_shot_figures_still_report(tmp_path: Path) -> None:
    for seed in (0, 1):
        write_lt_run(tmp_path / "runs", f"old{seed}", loss="ce", seed=seed,
                     recall=(0.9, 0.7, 0.6, 0.2), shots=False)  # fmt: skip
    report = build_report(tmp_path / "runs", out_dir=tmp_path / "report", formats=("csv",))
    cells = load_report(tmp_path / "report").tables["shot_acc_cifar10_exp"]
    assert (cells["n"] == 0).all() and (cells["status"] == "missing").all()
    assert not any(p.name.startswith("published_") for p in report.written)  # none listed
    gmean = load_report(tmp_path / "report").tables["gmean_auc_cifar10_exp"]
    assert (gmean["n"] == 2).all()  # the other tables as before
