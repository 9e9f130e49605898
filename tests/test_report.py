"""The report on fixture run folders written exactly as the run-output contract says.

``write_run`` (also used by test_notebook.py) writes one run folder: ``.hydra/config.yaml`` as
Hydra saves it (interpolations left in), ``metrics.json`` with the contract's keys,
``csv/metrics.csv`` as Lightning's CSVLogger writes it (rows of one epoch split over several
lines, then the post-fit validation/test rows), ``predictions.npz``; or ``error.json`` for a
failed member of a multirun, or only the config for an unfinished run.
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from imbloss.errors import ConfigError
from imbloss.report import build_report, load_runs, select_on_validation
from imbloss.report.paired import paired_tables
from imbloss.report.render import to_latex, to_markdown
from imbloss.report.tables import build_tables
from imbloss.report.tuning_noise import noise_frame

MODEL_TARGETS = {
    "MLP": "imbloss.models.MLP",
    "SimpleCNN": "imbloss.models.SimpleCNN",
    "ResNet32": "imbloss.models.ResNet32",
}


def write_run(
    root: Path,
    name: str,
    *,
    loss: str = "pf",
    hparams: dict[str, float] | None = None,
    dataset: str = "synthetic",
    protocol: str = "step",
    model: str = "MLP",
    ir: float | None = 10,
    seed: int = 0,
    data_seed: int = 0,
    minority_class: int | None = None,
    pair: str | None = None,
    minority_fraction: float | None = None,
    recall: Sequence[float] = (0.5, 0.9, 0.6, 0.8),
    auc: float = 0.9,
    f1: float = 0.7,
    f1_minority: float | None = None,
    val_gmean: float = 0.5,
    val_auc: float = 0.8,
    fit_time_s: float = 10.0,
    status: str = "ok",
    epochs: int = 2,
    full_recall: Sequence[float] | None = None,
    last_recall: Sequence[float] | None = None,
    last_val_gmean: float | None = None,
    missing_fraction: Sequence[float] | None = None,
    sampler: dict[str, Any] | None = None,
    label_noise: float | None = None,
    precision: str = "32-true",
) -> Path:
    """One run folder under ``root/name``; figures derive from ``recall`` as the contract says
    (the whole test split's from ``full_recall``, the last epoch's from ``last_recall``; both
    default to ``recall``)."""
    run_dir = root / name
    (run_dir / ".hydra").mkdir(parents=True)
    hparams = dict(hparams or {})
    config = {
        "dataset": {
            "_target_": "imbloss.data.ImbalancedDataModule",
            "name": dataset,
            "data_dir": "${paths.data_dir}",
            "protocol": protocol,
            "ir": "${ir}",
            "seed": data_seed,
            "batch_size": 500,
            "minority_class": minority_class,
            "pair": pair,
            "minority_fraction": minority_fraction,
        },
        "model": {"_target_": MODEL_TARGETS[model], "_partial_": True},
        "loss": {
            "_target_": "imbloss.losses.build_loss",
            "_partial_": True,
            "name": loss,
            **hparams,
        },
        "trainer": {"max_epochs": epochs, "precision": precision},
        "paths": {"data_dir": "/data", "output_dir": "${hydra:runtime.output_dir}"},
        "ir": ir,
        "seed": seed,
    }
    if sampler is not None:
        config["sampler"] = sampler
    if label_noise is not None:
        config["dataset"]["label_noise"] = label_noise
    (run_dir / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    if status == "failed":
        error = {"status": "failed", "error": "RuntimeError: boom", "traceback": "Traceback..."}
        (run_dir / "error.json").write_text(json.dumps(error))
        return run_dir
    if status == "unfinished":
        return run_dir
    num_classes = len(recall)
    minority = [1] if protocol in ("binary", "superclass_pair") else list(range(0, num_classes, 2))
    majority = [c for c in range(num_classes) if c not in minority]

    def figures(recall: Sequence[float]) -> dict[str, Any]:
        return {
            "gmean": math.prod(recall) ** (1 / num_classes),
            "auc": auc,
            "f1": f1,
            "acc": statistics.mean(recall),
            "per_class_recall": list(recall),
            "minority_acc": statistics.mean(recall[c] for c in minority),
            "majority_acc": statistics.mean(recall[c] for c in majority),
        }

    full = {**figures(full_recall or recall), "class_counts": [1000] * num_classes}
    last = {
        **figures(last_recall or recall),
        "val_gmean": val_gmean if last_val_gmean is None else last_val_gmean,
        "val_auc": val_auc,
        "full_test": full,
    }
    missing = list(missing_fraction or [0.5 if c in minority else 0.0 for c in range(num_classes)])
    metrics: dict[str, Any] = {
        "status": "ok",
        **figures(recall),
        "full_test": full,
        "last": last,
        "selected_epoch": 1,
        "batch_stats": {
            "batches": 10,
            "mean_per_batch": [1.0] * num_classes,
            "missing_fraction": missing,
            "batches_missing_any": max(missing),
        },
        "val_gmean": val_gmean,
        "val_auc": val_auc,
        "fit_time_s": fit_time_s,
        "epochs": epochs,
        "loss": loss,
        "hparams": hparams,
        "dataset": dataset,
        "protocol": protocol,
        "model": model,
        "ir": ir,
        "seed": seed,
        "data_seed": data_seed,
        "num_classes": num_classes,
        "class_names": [f"class {c}" for c in range(num_classes)],
        "minority_classes": minority,
        "train_class_counts": [100] * num_classes,
        "val_class_counts": [10] * num_classes,
        "test_class_counts": [50] * num_classes,
    }
    if f1_minority is not None:
        metrics["f1_minority"] = f1_minority
    if sampler is not None:
        metrics["sampler"] = sampler["name"]
        metrics["sampler_options"] = {k: v for k, v in sampler.items() if k != "name"}
    if label_noise is not None:
        metrics["label_noise"] = label_noise
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    np.savez(
        run_dir / "predictions.npz",
        target=np.arange(num_classes, dtype=np.int64),
        probs=np.eye(num_classes, dtype=np.float32),
    )
    (run_dir / "csv").mkdir()
    lines = ["epoch,step,train/loss,val/auc,val/gmean,val/loss,test/gmean"]
    for epoch in range(epochs):
        lines.append(f"{epoch},{epoch},,0.8,{0.3 + 0.1 * epoch},{1.5 - 0.2 * epoch},")
        lines.append(f"{epoch},{epoch},{2.0 - 0.3 * epoch},,,,")
    lines.append(f"{epochs},{epochs},,0.8,{val_gmean},1.0,")
    lines.append(f"{epochs},{epochs},,,,,{metrics['gmean']}")
    (run_dir / "csv" / "metrics.csv").write_text("\n".join(lines) + "\n")
    return run_dir


def test_auc_of_predicted_labels_is_computed_from_predictions_npz(tmp_path: Path) -> None:
    """``auc_hard`` is not in metrics.json: the loader computes it from each weight set's
    predictions, on both test sets (hand-computed values), and leaves NaN without them."""
    run_dir = write_run(tmp_path, "run", recall=(0.5, 1.0, 0.0))
    one_hot = np.eye(3, dtype=np.float32)
    np.savez(
        run_dir / "predictions.npz",
        target=np.array([0, 0, 1, 2]),
        probs=one_hot[[0, 1, 1, 0]],  # (TPR + TNR) / 2: 1/2, 5/6, 1/2
        full_target=np.array([0, 1, 2]),
        full_probs=one_hot[[0, 1, 2]],  # every label right: 1
        last_probs=one_hot[[0, 0, 1, 2]],  # every label right: 1
        last_full_probs=one_hot[[1, 1, 2]],  # 1/2 (class 0: TPR 0, TNR 1), 3/4, 1
    )
    write_run(tmp_path, "no_predictions", recall=(0.5, 1.0, 0.0))
    (tmp_path / "no_predictions" / "predictions.npz").unlink()
    selected = load_runs(tmp_path).set_index("run_dir")
    last = load_runs(tmp_path, figures="last").set_index("run_dir")
    assert selected.loc["run", "auc_hard"] == pytest.approx((0.5 + 5 / 6 + 0.5) / 3)
    assert selected.loc["run", "full_auc_hard"] == pytest.approx(1.0)
    assert last.loc["run", "auc_hard"] == pytest.approx(1.0)
    assert last.loc["run", "full_auc_hard"] == pytest.approx((0.5 + 0.75 + 1.0) / 3)
    assert math.isnan(selected.loc["no_predictions", "auc_hard"])


def _tables(root: Path) -> dict[str, Any]:
    runs = load_runs(root)
    return {t.name: t for t in build_tables(runs, select_on_validation(runs))}


def _cell(table: Any, **keys: Any) -> pd.Series:
    grid = table.grid()
    mask = pd.Series(True, index=grid.index)
    for key, value in keys.items():
        mask &= grid[key].isna() if value is None else grid[key] == value
    assert mask.sum() == 1, f"{keys} matches {mask.sum()} cells"
    return grid[mask].iloc[0]


# --- loading ---------------------------------------------------------------------------------


def test_load_runs_reads_config_and_metrics_of_every_status(tmp_path: Path) -> None:
    write_run(tmp_path / "sweep", "0", loss="wce", hparams={"scale": 2}, ir=100, seed=3)
    write_run(tmp_path / "sweep", "1", loss="wce", hparams={"scale": 3}, ir=100, status="failed")
    write_run(
        tmp_path,
        "lone",
        loss="pf",
        protocol="binary",
        ir=None,
        minority_class=3,
        recall=(0.9, 0.5),
        model="SimpleCNN",
        status="unfinished",
    )
    runs = load_runs(tmp_path).set_index("run_dir")

    assert list(runs.index) == ["lone", "sweep/0", "sweep/1"]
    assert runs.loc["sweep/0", "status"] == "ok"
    assert runs.loc["sweep/0", "hparams"] == '{"scale": 2.0}'
    assert runs.loc["sweep/0", "gmean"] == pytest.approx((0.5 * 0.9 * 0.6 * 0.8) ** 0.25)
    assert (runs.loc["sweep/0", "ir"], runs.loc["sweep/0", "seed"]) == (100, 3)
    failed = runs.loc["sweep/1"]
    assert (failed["status"], failed["error"], failed["loss"]) == (
        "failed",
        "RuntimeError: boom",
        "wce",
    )
    assert (failed["ir"], failed["model"], failed["hparams"]) == (100, "MLP", '{"scale": 3.0}')
    assert math.isnan(failed["gmean"])
    lone = runs.loc["lone"]
    assert (lone["status"], lone["variant"], lone["model"]) == ("unfinished", "3", "SimpleCNN")
    assert math.isnan(lone["ir"])


def test_load_runs_skips_the_report_folder_and_run_subfolders(tmp_path: Path) -> None:
    run = write_run(tmp_path, "run")
    (run / "checkpoints" / "nested").mkdir(parents=True)
    (run / "checkpoints" / "nested" / "metrics.json").write_text("{}")
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "metrics.json").write_text("{}")
    assert list(load_runs(tmp_path, exclude=tmp_path / "report")["run_dir"]) == ["run"]


# --- selection on validation -------------------------------------------------------------------


def test_selection_picks_the_best_validation_gmean_not_the_best_test(tmp_path: Path) -> None:
    # The grid point with the best test G-mean (scale 1) has the worst validation G-mean.
    write_run(
        tmp_path, "a", loss="wce", hparams={"scale": 1}, val_gmean=0.40, recall=(0.9, 0.9, 0.9, 0.9)
    )
    write_run(
        tmp_path, "b", loss="wce", hparams={"scale": 2}, val_gmean=0.70, recall=(0.2, 0.6, 0.4, 0.5)
    )
    write_run(
        tmp_path, "c", loss="wce", hparams={"scale": 3}, val_gmean=0.60, recall=(0.8, 0.8, 0.8, 0.8)
    )
    selected = select_on_validation(load_runs(tmp_path))
    assert list(selected["run_dir"]) == ["b"]
    assert selected["grid_points"].tolist() == [3]

    cell = _cell(_tables(tmp_path)["gmean_auc_synthetic_step"], loss="wce", metric="gmean")
    assert cell["mean"] == pytest.approx((0.2 * 0.6 * 0.4 * 0.5) ** 0.25)
    assert cell["n"] == 1


def test_selection_breaks_ties_on_validation_auc_then_folder(tmp_path: Path) -> None:
    write_run(tmp_path, "a", loss="focal", hparams={"gamma": 0}, val_gmean=0.7, val_auc=0.80)
    write_run(tmp_path, "b", loss="focal", hparams={"gamma": 1}, val_gmean=0.7, val_auc=0.85)
    write_run(tmp_path, "c", loss="focal", hparams={"gamma": 2}, val_gmean=0.7, val_auc=0.85)
    assert list(select_on_validation(load_runs(tmp_path))["run_dir"]) == ["b"]


def test_selection_is_per_setting_and_seed(tmp_path: Path) -> None:
    for ir in (10, 100):
        for seed in (0, 1):
            for scale in (1, 2):
                best = scale == (1 if (ir, seed) == (10, 0) else 2)
                write_run(
                    tmp_path,
                    f"ir{ir}-s{seed}-{scale}",
                    loss="wce",
                    ir=ir,
                    seed=seed,
                    hparams={"scale": scale},
                    val_gmean=0.9 if best else 0.1,
                )
    selected = select_on_validation(load_runs(tmp_path))
    assert sorted(selected["run_dir"]) == ["ir10-s0-1", "ir10-s1-2", "ir100-s0-2", "ir100-s1-2"]


# --- tables ----------------------------------------------------------------------------------


def test_ir_table_averages_seeds_with_a_student_t_interval(tmp_path: Path) -> None:
    for seed, recall in enumerate([(0.8,) * 4, (0.82,) * 4, (0.84,) * 4]):
        write_run(tmp_path, f"pf{seed}", loss="pf", seed=seed, recall=recall, auc=0.9 + seed / 100)
    table = _tables(tmp_path)["gmean_auc_synthetic_step"]
    cell = _cell(table, loss="pf", metric="gmean")
    assert (cell["mean"], cell["std"], cell["n"]) == (pytest.approx(0.82), pytest.approx(0.02), 3)
    markdown = to_markdown(table)
    # half-width t_{0.975, 2} * s / sqrt(3) = 4.3027 * 2.00 / 1.7321 = 4.97 points (AUC: 2.48)
    assert cell["ci_low"] == pytest.approx(0.82 - 4.302652729749464 * 0.02 / math.sqrt(3))
    assert "82.00 ± 4.97 [n=3]" in markdown
    assert "91.00 ± 2.48 [n=3]" in markdown
    assert "| IR=10 " in markdown and "PF-loss" in markdown


def test_missing_and_failed_cells_are_flagged_not_filled(tmp_path: Path) -> None:
    write_run(tmp_path, "pf10", loss="pf", ir=10)
    write_run(tmp_path, "ce10", loss="ce", ir=10)
    write_run(tmp_path, "ce100", loss="ce", ir=100)
    write_run(tmp_path, "pf100", loss="pf", ir=100, status="failed")
    write_run(tmp_path, "ce100b", loss="ce", ir=100, seed=1, status="unfinished")
    table = _tables(tmp_path)["gmean_auc_synthetic_step"]
    failed = _cell(table, loss="pf", ir=100.0, metric="gmean")
    assert (failed["n"], failed["n_failed"], failed["status"]) == (0, 1, "failed")
    assert math.isnan(failed["mean"])
    partial = _cell(table, loss="ce", ir=100.0, metric="gmean")
    assert (partial["n"], partial["n_unfinished"], partial["status"]) == (1, 1, "partial")
    markdown = to_markdown(table)
    assert "— [n=0, 1 failed]" in markdown
    assert "[n=1, 1 unfinished]" in markdown

    # a loss never run at one IR is a dash, not a number
    write_run(tmp_path, "wce10", loss="wce", hparams={"scale": 1}, ir=10)
    table = _tables(tmp_path)["gmean_auc_synthetic_step"]
    missing = _cell(table, loss="wce", ir=100.0, metric="auc")
    assert (missing["n"], missing["status"]) == (0, "missing")
    assert len(table.grid()) == 3 * 2 * 2  # losses x IRs x metrics, nothing more


def test_best_per_column_is_bold_in_markdown_and_latex(tmp_path: Path) -> None:
    write_run(tmp_path, "ce", loss="ce", recall=(0.5,) * 4, auc=0.95)
    write_run(tmp_path, "pf", loss="pf", recall=(0.7,) * 4, auc=0.90)
    table = _tables(tmp_path)["gmean_auc_synthetic_step"]
    markdown = to_markdown(table)
    assert "**70.00** [n=1]" in markdown and "**95.00** [n=1]" in markdown
    assert "**50.00**" not in markdown and "**90.00**" not in markdown
    latex = to_latex(table)
    assert r"\textbf{70.00} [n=1]" in latex and r"\textbf{95.00} [n=1]" in latex
    assert r"PF-loss" in latex and r"\begin{tabular}{llcc}" in latex


def test_binary_table_has_one_column_pair_per_minority_class(tmp_path: Path) -> None:
    for cls, recall in ((1, (0.9, 0.81)), (3, (0.64, 1.0))):
        for loss in ("wce", "pf"):
            write_run(
                tmp_path,
                f"{loss}{cls}",
                loss=loss,
                dataset="cifar10",
                protocol="binary",
                model="SimpleCNN",
                ir=None,
                minority_class=cls,
                recall=recall,
                auc=0.77,
            )
    tables = _tables(tmp_path)
    table = tables["gmean_auc_cifar10_binary"]
    assert table.title.startswith("Table II shape")
    markdown = to_markdown(table)
    header = markdown.splitlines()[4]
    assert [h.strip() for h in header.strip("|").split("|")] == [
        "Method",
        "CIFAR-10-1 G-mean",
        "CIFAR-10-1 AUC",
        "CIFAR-10-3 G-mean",
        "CIFAR-10-3 AUC",
    ]
    # sqrt(0.9 * 0.81) = 0.8538..., sqrt(0.64 * 1.0) = 0.8; equal printed values share the bold
    assert "**85.38** [n=1]" in markdown and "**80.00** [n=1]" in markdown
    assert markdown.count("**77.00** [n=1]") == 4
    latex = to_latex(table)
    assert r"\multicolumn{2}{c}{CIFAR-10-1}" in latex


def test_pair_table_reports_minority_f1_in_fractions(tmp_path: Path) -> None:
    for fraction in (0.2, 0.05):
        for loss, f1 in (("mse", 0.6698), ("msfe", 0.6772)):
            write_run(
                tmp_path,
                f"{loss}{fraction}",
                loss=loss,
                dataset="cifar100",
                protocol="superclass_pair",
                pair="household",
                minority_fraction=fraction,
                ir=None,
                recall=(0.9, 0.5),
                f1_minority=f1,
                auc=0.7819,
            )
    table = _tables(tmp_path)["f1_auc_cifar100_superclass_pair"]
    assert table.title.startswith("Second source, Table 1 shape")
    markdown = to_markdown(table)
    assert "F1 of label 1" in markdown
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    assert [h.strip() for h in lines[0].strip("|").split("|")] == [
        "Dataset",
        "Imb. level",
        "F-1 Score MSE",
        "F-1 Score MSFE",
        "ROC-AUC MSE",
        "ROC-AUC MSFE",
    ]
    first, second = ([c.strip() for c in line.strip("|").split("|")] for line in lines[2:4])
    assert first[:2] == ["Household", "0.2"]  # 0.2 before 0.05, as the source prints
    assert second[:2] == ["", "0.05"]  # the group label only on its first row
    assert first[2:4] == ["0.6698 [n=1]", "**0.6772** [n=1]"]


def test_training_time_sums_each_tuning_and_averages_one_run(tmp_path: Path) -> None:
    # wce: two tunings (IR 10, IR 100) of three grid points; pf: one run per IR.
    for ir, times in ((10, (10.0, 20.0, 30.0)), (100, (40.0, 50.0, 60.0))):
        for scale, fit_time in zip((1, 2, 3), times, strict=True):
            write_run(
                tmp_path,
                f"wce{ir}-{scale}",
                loss="wce",
                hparams={"scale": scale},
                ir=ir,
                fit_time_s=fit_time,
            )
        write_run(tmp_path, f"pf{ir}", loss="pf", ir=ir, fit_time_s=ir * 4.0)
    table = _tables(tmp_path)["training_time"]
    wce = _cell(table, loss="wce")
    # whole = mean(10+20+30, 40+50+60) = 105; one run = mean of the six = 35
    assert (wce["whole_s"], wce["mean"], wce["n"], wce["tunings"]) == (105.0, 35.0, 6, 2)
    pf = _cell(table, loss="pf")
    assert (pf["whole_s"], pf["mean"], pf["n"]) == (220.0, 220.0, 2)
    markdown = to_markdown(table)
    assert "105 (35) [n=6]" in markdown and "220 (220) [n=2]" in markdown


def test_sampler_and_label_noise_are_setting_axes(tmp_path: Path) -> None:
    samplers = {"none": {"name": "none"}, "cb": {"name": "class_balanced", "q": 0.5}}
    for number, (key, noise, seed) in enumerate(
        (k, n, s) for k in samplers for n in (0.0, 0.2) for s in (0, 1)
    ):
        recall = (0.1 + 0.2 * noise + 0.3 * (key == "cb") + 0.05 * seed, 0.9, 0.6, 0.8)
        write_run(
            tmp_path,
            str(number),
            sampler=samplers[key],
            label_noise=noise,
            seed=seed,
            recall=recall,
        )
    write_run(tmp_path, "old", loss="ce")  # written before the axes existed: none, no noise
    drs = {"name": "drs", "start": 0.8, "max_epochs": "${trainer.max_epochs}", "q": 0.0}
    write_run(tmp_path, "pending", sampler=drs, status="unfinished")
    runs = load_runs(tmp_path).set_index("run_dir")
    assert runs.loc["old", ["sampler", "label_noise"]].tolist() == ["none", 0.0]
    assert runs.loc["pending", "sampler"] == "drs(max_epochs=2, q=0, start=0.8)"
    assert runs.loc["3", ["sampler", "label_noise"]].tolist() == ["none", 0.2]

    table = _tables(tmp_path)["gmean_auc_synthetic_step"]
    assert table.row_keys == ("sampler", "label_noise", "ir", "loss")
    for key, noise in ((k, n) for k in samplers for n in (0.0, 0.2)):
        sampler = "none" if key == "none" else "class_balanced(q=0.5)"
        cell = _cell(table, sampler=sampler, label_noise=noise, loss="pf", metric="gmean")
        expected = [
            (0.1 + 0.2 * noise + 0.3 * (key == "cb") + 0.05 * s) * 0.9 * 0.6 * 0.8 for s in (0, 1)
        ]
        assert cell["n"] == 2
        assert cell["mean"] == pytest.approx(statistics.mean(v**0.25 for v in expected))
    drs_label = "drs(max_epochs=2, q=0, start=0.8)"
    pending = _cell(table, sampler=drs_label, label_noise=0.0, loss="pf", metric="gmean")
    assert (pending["n"], pending["n_unfinished"], pending["status"]) == (0, 1, "failed")
    markdown = to_markdown(table)
    assert "| Sampler" in markdown and "class_balanced(q=0.5)" in markdown


def test_paired_comparison_is_per_sampler_and_label_noise(tmp_path: Path) -> None:
    settings = [({"name": "none"}, 0.0), ({"name": "oversample"}, 0.0), ({"name": "none"}, 0.2)]
    for number, (sampler, noise) in enumerate(settings):
        for loss, first in (("pf", 0.5), ("ce", 0.1 + 0.2 * number)):
            recall = (first, 0.9, 0.6, 0.8)
            write_run(tmp_path, f"{loss}{number}", loss=loss, sampler=sampler, label_noise=noise,
                      recall=recall)  # fmt: skip
    runs = load_runs(tmp_path)
    (table,) = paired_tables(select_on_validation(runs), "pf")
    _, lines = table.body()
    assert [line[0] for line in lines] == [
        "IR=10",
        "IR=10, label noise 0.2",
        "IR=10, sampler oversample",
    ]
    # G-mean = (recall product) ** (1/4); CE's first recall 0.1 + 0.2 * setting, PF's 0.5
    for line, number in zip(lines, (0, 2, 1), strict=True):
        expected = 100 * (((0.1 + 0.2 * number) * 0.432) ** 0.25 - (0.5 * 0.432) ** 0.25)
        assert line[2].startswith(f"{expected:+.2f}") and line[1] == "CE"


def test_generic_table_lists_every_cell_once(tmp_path: Path) -> None:
    write_run(tmp_path, "a", loss="pf", ir=10)
    write_run(tmp_path, "b", loss="ce", ir=100, recall=(0.2, 0.4, 0.6, 0.8))
    write_run(
        tmp_path, "c", loss="pf", protocol="binary", ir=None, minority_class=1, recall=(0.9, 0.4)
    )
    table = _tables(tmp_path)["all_cells"]
    grid = table.grid()
    assert len(grid) == 3 * 6  # three settings x losses that ran, six figures
    cell = _cell(table, loss="ce", ir=100.0, metric="majority_acc")
    assert cell["mean"] == pytest.approx((0.4 + 0.8) / 2)


# --- the command line -------------------------------------------------------------------------


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imbloss.report", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_writes_every_format_beside_the_runs(tmp_path: Path) -> None:
    for ir in (10, 100):
        write_run(tmp_path, f"pf{ir}", loss="pf", ir=ir)
        write_run(tmp_path, f"ce{ir}", loss="ce", ir=ir, status="failed" if ir == 100 else "ok")
    result = _run_cli(str(tmp_path))
    assert result.returncode == 0, result.stderr
    out = tmp_path / "report"
    for stem in (
        "training_time",
        "gmean_auc_synthetic_step",
        "class_acc_synthetic_step",
        "all_cells",
        "gmean_auc_synthetic_step_full",
        "class_acc_synthetic_step_full",
        "all_cells_full",
        "paired_pf_synthetic_step_MLP",
    ):
        for ext in ("md", "csv", "tex"):
            assert (out / f"{stem}.{ext}").is_file()
            assert f"wrote {out / f'{stem}.{ext}'}" in result.stdout
    plots = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert plots == [
        "batches_missing_synthetic_step_MLP_ir10.png",
        "batches_missing_synthetic_step_MLP_ir100.png",
        "curves_synthetic_step_MLP_ir10.png",
        "curves_synthetic_step_MLP_ir100.png",
        "gmean_ci_synthetic_step_MLP.png",
        "gmean_vs_ir_synthetic_step_MLP.png",
        "recall_synthetic_step_MLP_ir10.png",
        "recall_synthetic_step_MLP_ir100.png",
    ]
    report = (out / "report.md").read_text()
    assert "failed 1" in report and "`ce100`" in report and "RuntimeError: boom" in report
    cells = pd.read_csv(out / "gmean_auc_synthetic_step.csv")
    failed = cells[(cells["loss"] == "ce") & (cells["ir"] == 100)]
    assert set(failed["status"]) == {"failed"} and failed["mean"].isna().all()
    # a second report ignores the first one's folder
    assert _run_cli(str(tmp_path), "--format", "csv").returncode == 0


def test_cli_without_runs_exits_non_zero_with_one_message(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = _run_cli(str(tmp_path / "empty"))
    assert result.returncode == 2
    assert "no runs under" in result.stderr and "metrics.json" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_single_run_folder_is_a_report_path(tmp_path: Path) -> None:
    run = write_run(tmp_path, "run", loss="ce", recall=(0.25, 1.0, 0.25, 1.0))
    report = build_report(run, formats=["csv"])
    assert report.out_dir == run / "report"
    assert list(report.runs["run_dir"]) == ["."]
    cells = pd.read_csv(run / "report" / "all_cells.csv").set_index("metric")
    assert cells.loc["gmean", "mean"] == pytest.approx(0.5)
    assert [p.name for p in (run / "report").glob("*.md")] == ["report.md"]  # no table .md
    assert not (run / "report" / "plots").exists()


def test_unknown_format_is_a_config_error(tmp_path: Path) -> None:
    write_run(tmp_path, "a")
    with pytest.raises(ConfigError, match=r"unknown report format.*accepted: md, csv, tex, png"):
        build_report(tmp_path, formats=["md", "pdf"])


def test_report_of_hundreds_of_runs(tmp_path: Path) -> None:
    """216 runs in 72 cells, every one read and selected (benchmarks/bench_report.py times the
    loader on the committed runs)."""
    grids = {
        "wce": [{"scale": s} for s in (0.5, 1, 2, 5, 10)],
        "focal": [{"gamma": g} for g in (0, 0.5, 1, 2, 5)],
        "pf": [{}],
        "ce": [{}],
    }
    count = 0
    for ir in (10, 100, 200):
        for seed in range(3):
            for loss, points in grids.items():
                for hparams in points:
                    for cls in (1, 3):
                        write_run(
                            tmp_path,
                            f"r{count}",
                            loss=loss,
                            hparams=hparams,
                            ir=ir,
                            seed=seed,
                            protocol="binary",
                            minority_class=cls,
                            recall=(0.9, 0.5),
                            val_gmean=0.5 + count % 7 / 100,
                        )
                        count += 1
    report = build_report(tmp_path)
    assert len(report.runs) == count == 216
    assert len(report.selected) == 3 * 3 * 4 * 2


def test_precision_and_schedule_are_settings_of_their_own(tmp_path: Path) -> None:
    """Runs that differ in precision or schedule are never averaged into one cell or panel."""
    root = tmp_path / "runs"
    write_run(root, "a", seed=0, recall=(0.5, 0.9, 0.6, 0.8))
    write_run(root, "b", seed=0, recall=(0.4, 0.9, 0.5, 0.8), precision="bf16-mixed")
    write_run(root, "c", seed=0, recall=(0.3, 0.9, 0.4, 0.8), epochs=200)
    report = build_report(root, tmp_path / "out")
    cells = report.selected[["precision", "schedule"]].drop_duplicates()
    assert sorted(map(tuple, cells.to_numpy().tolist())) == [
        ("32-true", 2.0),
        ("32-true", 200.0),
        ("bf16-mixed", 2.0),
    ]
    recall_plots = sorted(p.name for p in (tmp_path / "out" / "plots").glob("recall_*.png"))
    assert len(recall_plots) == 3
    assert any("bf16-mixed" in name for name in recall_plots)
    assert any("200epochs" in name for name in recall_plots)


def test_tuning_noise_rank_correlation_and_regret_by_hand(tmp_path: Path) -> None:
    """Five grid points of one tuning: validation ranks 1..5, whole-split ranks 2, 1, 3, 5, 4."""
    root = tmp_path / "runs"
    whole = {0.1: 0.62, 0.2: 0.60, 0.5: 0.64, 1.0: 0.70, 2.0: 0.66}
    for rank, (scale, full) in enumerate(whole.items()):
        write_run(
            root,
            f"wce{scale}",
            loss="wce",
            hparams={"scale": scale},
            val_gmean=0.5 + rank / 100,
            full_recall=(full, full, full, full),
        )
    report = build_report(root, tmp_path / "out")
    frame = pd.read_csv(tmp_path / "out" / "tuning_noise.csv")
    (row,) = frame.itertuples(index=False)
    assert row.points == 5
    assert row.rho == pytest.approx(0.8)  # 1 - 6 * (1 + 1 + 0 + 1 + 1) / (5 * 24)
    z, half = math.atanh(0.8), 1.959963984540054 * math.sqrt(1.06 / 2)
    assert (row.rho_low, row.rho_high) == (
        pytest.approx(math.tanh(z - half)),
        pytest.approx(math.tanh(z + half)),
    )
    assert '"scale": 2.0' in row.chosen and '"scale": 1.0' in row.best  # chosen on validation
    assert row.regret == pytest.approx(100 * (0.70 - 0.66))
    assert "How noisy is the choice of a grid point" in (report.out_dir / "report.md").read_text()
    # the points a halving sweep finished are its survivors, not a grid: no ρ, no regret
    assert noise_frame(report.runs.assign(tuning="halving")).empty
