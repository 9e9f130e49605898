"""The results campaign: its plan and folders, compact predictions, and the verdicts of claims."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imbloss.errors import ConfigError, RunFileError
from imbloss.report.runs import RUN_COLUMNS
from imbloss.results import plan
from imbloss.results.__main__ import main as results_main
from imbloss.results.claims import (
    CONTRADICTED,
    NOT_DECIDED,
    README_BEGIN,
    README_END,
    SUPPORTED,
    Campaign,
    Stats,
    auc_definition_note,
    claims,
    combine,
    paired,
    precision_section,
    results_page,
    schedule_section,
    side_verdict,
    similar_verdict,
    write_results_page,
)
from imbloss.results.compact import compact_arrays, compact_predictions
from imbloss.results.figure import Point, against_pf_figure
from imbloss.runs.readers import expand_compact, read_predictions

# --- the plan ---------------------------------------------------------------------------------


def test_stages_hold_the_issues_cells() -> None:
    by_name = {stage.name: stage for stage in plan.stages("bf16-mixed", 60)}
    assert list(by_name) == [
        "precision",
        "schedule",
        "ir100",
        "ir200",
        "ir10",
        "label_noise",
        "resampling",
        "binary",
    ]
    # 3 losses x 3 seeds x 2 precisions; 2 x 2 at 200 epochs; 8 losses x 3 seeds + pf, wce x 2;
    # binary: 5 losses x 2 minority fractions x 3 seeds
    counts = {name: len(stage.jobs()) for name, stage in by_name.items()}
    assert counts == {
        "precision": 18,
        "schedule": 4,
        "ir100": 28,
        "ir200": 28,
        "ir10": 24,
        "label_noise": 18,
        "resampling": 18,
        "binary": 30,
    }
    losses = {job["loss"] for job in by_name["ir100"].jobs()}
    assert losses == {"pf", "wce", "focal", "focal_alpha", "ldam", "wldam", "ce", "bsm"}
    pf_seeds = sorted(int(j["seed"]) for j in by_name["ir100"].jobs() if j["loss"] == "pf")
    assert pf_seeds == [0, 1, 2, 3, 4]
    # the extra seeds of the headline pair run first
    first = [(j["loss"], j["seed"]) for j in by_name["ir100"].jobs()[:5]]
    assert first == [("pf", "3"), ("pf", "4"), ("wce", "3"), ("wce", "4"), ("pf", "0")]


def test_the_decided_precision_stage_shares_its_folders_with_the_campaign() -> None:
    by_name = {stage.name: stage for stage in plan.stages("bf16-mixed", 60)}
    precision = {plan.job_dirname(j) for j in by_name["precision"].jobs()}
    ir100 = {plan.job_dirname(j) for j in by_name["ir100"].jobs()}
    shared = precision & ir100
    assert len(shared) == 9  # pf, wce, ldam x seeds 0-2 in bf16: trained once
    assert all("trainer.precision=bf16-mixed" in name for name in shared)


def test_job_dirname_is_hydras_override_dirname(compose_train_cfg) -> None:
    stages = plan.stages("bf16-mixed", 60)
    for stage in stages:
        job = stage.jobs()[-1]
        cfg = compose_train_cfg("campaign=fmnist", *(f"{k}={v}" for k, v in job.items()))
        assert cfg.hydra.job.override_dirname == plan.job_dirname(job)
        assert cfg.hydra.sweep.subdir == plan.job_dirname(job)
    assert cfg.threads == 1
    assert cfg.hydra.launcher.n_jobs == 2
    assert "joblib" in cfg.hydra.launcher._target_
    assert plan.job_dirname({"loss": "pf", "campaign": "fmnist", "ir": "10"}) == "ir=10,loss=pf"


def test_stages_wait_for_the_precision_decision(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(plan, "PRECISION", None)
    monkeypatch.setattr(plan, "EPOCHS_CONFIRMED", False)
    stages = plan.stages()
    plan.check_decided(plan.stage_named("precision", stages))
    with pytest.raises(ConfigError, match="'schedule' needs the precision decision"):
        plan.check_decided(plan.stage_named("schedule", stages))
    with pytest.raises(ConfigError, match="needs the precision and schedule decision"):
        plan.check_decided(plan.stage_named("ir100", stages))
    monkeypatch.setattr(plan, "PRECISION", "32-true")
    plan.check_decided(plan.stage_named("schedule", stages))
    with pytest.raises(ConfigError, match="'ir100' needs the schedule decision"):
        plan.check_decided(plan.stage_named("ir100", stages))
    monkeypatch.setattr(plan, "EPOCHS_CONFIRMED", True)
    plan.check_decided(plan.stage_named("ir100", stages))
    assert results_main(["run", "table9"]) == 2
    message = capsys.readouterr().err
    assert "unknown campaign stage 'table9'" in message
    assert "accepted: precision, schedule, ir100" in message


# --- compact predictions ----------------------------------------------------------------------


def _predictions(rng: np.random.Generator, same_weights: bool = False) -> dict[str, np.ndarray]:
    full_target = np.repeat(np.arange(4), 25)
    logits = rng.normal(size=(100, 4)).astype(np.float32)
    full_probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    last = full_probs if same_weights else np.roll(full_probs, 1, axis=1)
    positions = np.sort(rng.choice(100, size=40, replace=False))
    return {
        "target": full_target[positions],
        "probs": full_probs[positions],
        "full_target": full_target,
        "full_probs": full_probs,
        "last_probs": last[positions],
        "last_full_probs": last,
    }


@pytest.mark.parametrize("same_weights", [False, True])
def test_compact_predictions_expand_to_the_arrays_written(
    tmp_path: Path, same_weights: bool
) -> None:
    arrays = _predictions(np.random.default_rng(0), same_weights)
    path = tmp_path / "run" / "predictions.npz"
    path.parent.mkdir()
    np.savez(path, **arrays)
    before = path.stat().st_size
    assert compact_predictions(path) is True
    assert compact_predictions(path) is False  # already compact
    with np.load(path) as stored:
        assert ("last_full_log_probs" in stored.files) is not same_weights
        assert stored["full_log_probs"].dtype == np.float16
    assert path.stat().st_size < before / 2
    expanded = read_predictions(path)
    assert set(expanded) == set(arrays)
    for name, array in arrays.items():
        if array.dtype.kind == "f":
            assert expanded[name].dtype == np.float32
            # |log p| < 6 here: p within 6 * 2^-11 relative; every predicted class the same
            np.testing.assert_allclose(expanded[name], array, rtol=6 * 2**-11, atol=0)
            np.testing.assert_array_equal(expanded[name].argmax(1), array.argmax(1))
        else:
            np.testing.assert_array_equal(expanded[name], array)


def test_a_near_tie_keeps_its_row_in_float32() -> None:
    arrays = _predictions(np.random.default_rng(2))
    tie = np.array([0.25, 0.25 * (1 + 2**-14), 0.25, 0.25 * (1 - 2**-14)], np.float32)
    for key in ("full_probs", "last_full_probs"):
        arrays[key] = arrays[key].copy()
        arrays[key][7] = tie  # float16 would make classes 0 and 1 equal: argmax 0, not 1
    arrays["probs"] = arrays["full_probs"][np.isin(np.arange(100), [7, 8, 9])]
    arrays["last_probs"] = arrays["last_full_probs"][[7, 8, 9]]
    arrays["target"] = arrays["full_target"][[7, 8, 9]]
    compact = compact_arrays(arrays)
    assert compact["full_log_probs"].dtype == np.float16
    np.testing.assert_array_equal(compact["full_log_probs_rows"], [7])  # that row alone
    assert compact["full_log_probs_exact"].dtype == np.float32
    expanded = expand_compact(compact)
    for key in ("full_probs", "last_full_probs", "probs"):
        np.testing.assert_array_equal(expanded[key].argmax(1), arrays[key].argmax(1))
    assert expanded["full_probs"][7].argmax() == 1


def test_compact_refuses_a_protocol_row_not_in_the_whole_split() -> None:
    arrays = _predictions(np.random.default_rng(1))
    arrays["probs"] = arrays["probs"].copy()
    arrays["probs"][3, 0] += 0.5
    with pytest.raises(RunFileError, match="not among the whole test split"):
        compact_arrays(arrays)


# --- verdicts ---------------------------------------------------------------------------------


def test_paired_stats_by_hand() -> None:
    a = pd.DataFrame({"seed": [0, 1, 2, 3], "data_seed": 0, "gmean": [0.85, 0.84, 0.86, 0.9]})
    b = pd.DataFrame({"seed": [0, 1, 2], "data_seed": 0, "gmean": [0.80, 0.80, 0.80]})
    stats = paired(a, b, "gmean")  # seed 3 has no pair: differences 5, 4, 6 points
    half = 4.302652729749464 * 1.0 / math.sqrt(3)  # t(0.975, 2) * sd / sqrt(n)
    assert (stats.n, stats.wins, stats.ties, stats.losses) == (3, 3, 0, 0)
    assert stats.mean == pytest.approx(5.0)
    assert (stats.low, stats.high) == (pytest.approx(5 - half), pytest.approx(5 + half))


def _stats(low: float, high: float, n: int = 3) -> Stats:
    return Stats(n, (low + high) / 2, low, high, 0, 0, 0)


def test_side_similar_and_combined_verdicts() -> None:
    assert side_verdict(_stats(0.5, 3.0), complete=True) == SUPPORTED
    assert side_verdict(_stats(-3.0, -0.5), complete=True) == CONTRADICTED
    assert side_verdict(_stats(-3.0, -0.5), complete=True, better=False) == SUPPORTED
    assert side_verdict(_stats(-1.0, 3.0), complete=True) == NOT_DECIDED
    assert side_verdict(_stats(0.5, 3.0), complete=False) == NOT_DECIDED
    assert side_verdict(_stats(0.5, 3.0, n=2), complete=True) == NOT_DECIDED
    assert similar_verdict([_stats(-1.5, 1.9), _stats(-0.1, 0.2)], True) == SUPPORTED
    assert similar_verdict([_stats(-1.5, 1.9), _stats(2.1, 4.0)], True) == CONTRADICTED
    assert similar_verdict([_stats(-1.5, 2.5)], True) == NOT_DECIDED
    assert combine([SUPPORTED, SUPPORTED]) == SUPPORTED
    assert combine([SUPPORTED, NOT_DECIDED]) == NOT_DECIDED
    assert combine([NOT_DECIDED, CONTRADICTED]) == CONTRADICTED


def _runs(
    gmeans: dict[tuple[str, int], float], precision: str = "32-true", schedule: float = 60.0
) -> pd.DataFrame:
    """Finished campaign runs at IR=100: (loss, seed) -> whole-split G-mean."""
    rows = []
    for (loss, seed), gmean in gmeans.items():
        row = dict.fromkeys(RUN_COLUMNS, math.nan)
        row.update(
            status="ok",
            loss=loss,
            dataset="fashion_mnist",
            protocol="step",
            model="FashionMNISTCNN",
            ir=100.0,
            sampler="none",
            label_noise=0.0,
            precision=precision,
            schedule=schedule,
            seed=float(seed),
            data_seed=0.0,
            gmean=gmean - 0.01,
            full_gmean=gmean,
            minority_acc=0.7,
            full_minority_acc=0.7,
            fit_time_s=600.0,
            per_class_recall=[],
            full_per_class_recall=[],
        )
        rows.append(row)
    return pd.DataFrame(rows, columns=list(RUN_COLUMNS))


def _claim(found: list, text: str):
    return next(claim for claim in found if claim.claim == text)


@pytest.mark.parametrize(
    ("pf_gain", "expected"), [(0.04, SUPPORTED), (-0.04, CONTRADICTED), (0.0, NOT_DECIDED)]
)
def test_pf_beats_wce_verdict_from_five_paired_seeds(
    monkeypatch: pytest.MonkeyPatch, pf_gain: float, expected: str
) -> None:
    monkeypatch.setattr(plan, "PRECISION", None)
    noise = [0.01, -0.01, 0.0, 0.005, -0.005]
    gmeans = {("wce", s): 0.80 + noise[s] for s in range(5)}
    gmeans |= {("pf", s): 0.80 + pf_gain + noise[(s + 1) % 5] / 2 for s in range(5)}
    campaign = Campaign(_runs(gmeans), _runs(gmeans))
    found = claims(campaign)
    verdict = _claim(found, "PF beats WCE-loss at IR=100")
    assert verdict.verdict == expected
    assert "n=5" in verdict.evidence
    # no FL run: that claim waits
    assert _claim(found, "PF beats FL at IR=100").verdict == NOT_DECIDED


def test_an_incomplete_cell_decides_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plan, "PRECISION", None)
    gmeans = {("wce", s): 0.80 for s in range(4)} | {("pf", s): 0.85 + s / 100 for s in range(4)}
    campaign = Campaign(_runs(gmeans), _runs(gmeans))
    verdict = _claim(claims(campaign), "PF beats WCE-loss at IR=100")
    assert "n=4" in verdict.evidence  # 4 clear wins, but seed 4 of 5 has not run
    assert verdict.verdict == NOT_DECIDED


def test_results_page_counts_verdicts_and_names_missing_jobs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(plan, "PRECISION", None)
    gmeans = {("wce", s): 0.80 + s / 200 for s in range(5)}
    gmeans |= {("pf", s): 0.85 + s / 100 for s in range(5)}
    runs = _runs(gmeans)
    page = results_page(runs, runs, "python -m imbloss.report X --claims Y")
    assert page.startswith("# Results")
    assert "**Verdicts so far: 1 supported, 0 contradicted," in page
    assert "| PF beats WCE-loss at IR=100" in page
    assert "`experiment=fmnist_step,ir=100,loss=focal,seed=0,trainer.max_epochs=60," in page
    # Table IV row of PF: the whole split's mean over 5 seeds, the paper's 84.85 beside it
    row = next(line for line in page.splitlines() if line.startswith("| IR=100 | PF-loss"))
    assert "84.85" in row and "87.00 ± " in row and "[n=5/5]" in row


def test_table_iv_puts_the_papers_auc_beside_both_readings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The paper's AUC (PF at IR=100: 92.93, WCE: 92.03) stands beside the AUC of predicted
    labels and the AUC of scores; the note gives each reading's range and mean |measured − paper|
    over the cells with runs."""
    monkeypatch.setattr(plan, "PRECISION", None)
    runs = _runs({("pf", s): 0.8 for s in range(5)} | {("wce", s): 0.8 for s in range(5)})
    runs["auc_hard"] = np.where(runs["loss"] == "pf", 0.9193, 0.9303)  # -1.00 and +1.00
    runs["auc"] = np.where(runs["loss"] == "pf", 0.9943, 0.9903)  # +6.50 and +7.00
    campaign = Campaign(runs, runs)
    note, _blank = auc_definition_note(campaign, [("auc_hard", "labels"), ("auc", "scores")])
    assert (
        "labels: measured − paper -1.00 to +1.00 points, |Δ| 1.00 on average over 2 cells" in note
    )
    assert (
        "scores: measured − paper +6.50 to +7.00 points, |Δ| 6.75 on average over 2 cells" in note
    )
    page = results_page(runs, runs, "python -m imbloss.report X --claims Y")
    row = next(line for line in page.splitlines() if line.startswith("| IR=100 | PF-loss"))
    cells = [cell.strip() for cell in row.split("|")]
    hard = cells.index("91.93 ± 0.00 [n=5/5]")
    assert cells[hard + 1 : hard + 3] == ["92.93", "-1.00"]
    scores = cells.index("99.43 ± 0.00 [n=5/5]")
    assert cells[scores + 1 : scores + 3] == ["92.93", "6.50"]
    # no finished run: no note
    assert auc_definition_note(Campaign(runs.iloc[:0], runs.iloc[:0]), [("auc", "scores")]) == []


def test_time_left_counts_the_campaigns_schedule_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The 200-epoch runs of the schedule check take longer: they stay out of the estimate."""
    monkeypatch.setattr(plan, "PRECISION", None)
    monkeypatch.setattr(plan, "JOB_FIT_S", {})  # no figure of today's code: the runs' mean
    short = _runs({("pf", s): 0.8 for s in range(2)})  # fit 600 s each
    long = _runs({("wce", s): 0.8 for s in range(2)}, schedule=float(plan.SOURCE_EPOCHS))
    long["fit_time_s"] = 6000.0
    runs = pd.concat([short, long], ignore_index=True)
    page = results_page(runs, runs, "python -m imbloss.report X --claims Y")
    line = next(line for line in page.splitlines() if " jobs left: about " in line)
    assert "(10.0 min a job)" in line, line


def test_time_left_takes_the_fit_time_of_todays_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runs so far were trained by slower code: a job's measured time today counts."""
    monkeypatch.setattr(plan, "PRECISION", None)
    monkeypatch.setattr(plan, "JOB_FIT_S", {"32-true": 300.0, "bf16-mixed": 120.0})
    runs = _runs({("pf", s): 0.8 for s in range(2)})  # fit 600 s each, in 32-true
    page = results_page(runs, runs, "python -m imbloss.report X --claims Y")
    line = next(line for line in page.splitlines() if " jobs left: about " in line)
    assert "in 32-true (5.0 min a job)" in line, line
    assert "in bf16-mixed (2.0 min a job)" in line, line


def test_run_without_stages_stops_before_the_first_undecided_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(plan, "PRECISION", None)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.py").write_text("")
    monkeypatch.setattr(
        "imbloss.results.__main__.run_in_own_group", lambda args, cwd: calls.append(args) or 0
    )
    assert results_main(["run"]) == 0
    assert len(calls) == 1  # the precision stage's one multirun
    assert calls[0][1:4] == ["train.py", "-m", "campaign=fmnist"]
    assert "trainer.precision=32-true,bf16-mixed" in calls[0]
    assert "stops before stage schedule" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("shift", "seeds", "expected"),
    [
        (0.0, 3, "bf16-mixed passes"),  # differences of -0.5..+0.5 points around 0
        (-0.03, 3, "bf16-mixed fails"),  # 3 points lower in bf16: outside the 2-point margin
        (0.0, 2, "pending: 6 of 9 pairs have finished"),
    ],
)
def test_precision_rule(
    monkeypatch: pytest.MonkeyPatch, shift: float, seeds: int, expected: str
) -> None:
    monkeypatch.setattr(plan, "PRECISION", None)
    jitter = [0.005, -0.005, 0.0]
    fp32 = {(loss, s): 0.8 for loss in ("pf", "wce", "ldam") for s in range(seeds)}
    bf16 = {key: value + shift + jitter[key[1]] for key, value in fp32.items()}
    runs = pd.concat([_runs(fp32), _runs(bf16, precision="bf16-mixed")], ignore_index=True)
    text = "\n".join(precision_section(Campaign(runs, runs)))
    assert f"Outcome: **{expected}" in text


@pytest.mark.parametrize(
    ("long_pf", "expected"),
    [(0.86, "60 epochs stand"), (0.70, "60 epochs change the result"), (None, "pending: 2 of 4")],
)
def test_schedule_rule(
    monkeypatch: pytest.MonkeyPatch, long_pf: float | None, expected: str
) -> None:
    monkeypatch.setattr(plan, "PRECISION", None)
    short = {("pf", 0): 0.85, ("pf", 1): 0.84, ("wce", 0): 0.80, ("wce", 1): 0.81}
    long = {("wce", 0): 0.81, ("wce", 1): 0.80}
    if long_pf is not None:  # 200 epochs: PF 1 point up (stands) or below WCE (changes)
        long |= {("pf", 0): long_pf, ("pf", 1): long_pf - 0.01}
    runs = pd.concat([_runs(short), _runs(long, schedule=200.0)], ignore_index=True)
    text = "\n".join(schedule_section(Campaign(runs, runs)))
    assert f"Outcome: **{expected}" in text


def test_figure_against_pf_marks_complete_cells_and_shares_one_x_range() -> None:
    nan = math.nan
    points = [
        Point(100, "WCE-loss", 5, -1.0, -2.0, 0.0, complete=True),
        Point(100, "FL", 2, -3.0, -40.0, 34.0, complete=False),  # 2 seeds: off the panel
        Point(200, "WCE-loss", 0, nan, nan, nan, complete=False),
        Point(200, "FL", 0, nan, nan, nan, complete=False),
    ]
    figure = against_pf_figure(points, ["WCE-loss", "FL"], similar_pp=2.0)
    ir100, ir200 = figure.axes
    assert [ir100.get_title(), ir200.get_title()] == ["IR=100", "IR=200"]
    markers = {
        (float(line.get_xdata()[0]), float(line.get_ydata()[0])): line.get_markerfacecolor()
        for line in ir100.lines
        if line.get_marker() == "o"
    }
    assert set(markers) == {(-1.0, 0.0), (-3.0, 1.0)}
    assert markers[(-3.0, 1.0)] == "white" and markers[(-1.0, 0.0)] != "white"
    # the x range: the 5-seed interval (±2), the 2-seed mean (3), at least 2 x 2.0: 4, +5 %
    assert ir100.get_xlim() == pytest.approx((-4.2, 4.2))
    assert ir200.get_xlim() == ir100.get_xlim()
    assert [text.get_text() for text in ir200.texts] == ["no runs yet"]
    assert not [line for line in ir200.lines if line.get_marker() == "o"]


def test_write_results_page_writes_page_figure_and_readme_block(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(plan, "PRECISION", None)
    runs = _runs({("pf", s): 0.85 for s in range(5)} | {("wce", s): 0.80 for s in range(5)})
    readme = tmp_path / "README.md"
    readme.write_text(f"# Project\n{README_BEGIN}\nold verdicts\n{README_END}\nrest\n")
    out = tmp_path / "docs" / "results.md"
    written = write_results_page(tmp_path, out, lambda _root, _figures: runs, "CMD", readme)
    assert written == out and out.read_text().startswith("# Results")
    assert "![method − PF per IR](figures/results_against_pf.png)" in out.read_text()
    png = tmp_path / "docs" / "figures" / "results_against_pf.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = readme.read_text()
    assert "old verdicts" not in text and "PF-loss against" in text and text.endswith("rest\n")
