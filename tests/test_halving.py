"""Successive halving (imbloss.multirun.halving, hydra/sweeper=halving): rung arithmetic, choices,
runs continued across rungs, resume after a kill, launchers, bad values."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import pytest
from omegaconf import OmegaConf, open_dict

from imbloss.errors import ConfigError, RunFileError
from imbloss.multirun.halving import (
    RECORD_FILE,
    HalvingRecord,
    Point,
    best_per_setting,
    check_halving,
    hyperparameter_keys,
    keep_best,
    kept_count,
    make_points,
    rung_epochs,
)
from imbloss.report.build import build_report, load_report
from imbloss.runs.folder import claim_folder
from imbloss.runs.outputs import write_json
from imbloss.runs.readers import read_checkpoint
from imbloss.runs.resume import start_job

from conftest import FAST_OVERRIDES, REPO_ROOT, run_train

NOT_COMPARED = {"fit_time_s", "stack_fit_time_s", "evaluation_time_s", "checkpoint"}
TESTS_ON_PATH = os.pathsep.join(
    p for p in (str(REPO_ROOT / "tests"), os.environ.get("PYTHONPATH")) if p
)
# 3 grid points x 2 seeds; eta 3: rung 0 trains all 6 for 1 epoch, rung 1 the best of each seed
# to 3 epochs.
SWEEP = (
    "-m",
    *FAST_OVERRIDES,
    "ir=2",
    "trainer.max_epochs=3",
    "trainer.deterministic=true",
    "model.dropout=0",  # the stacked engine draws other dropout masks than separate runs
    "threads=1",
    "loss=wce",
    "loss.scale=0.5,1.0,2.0",
    "seed=0,1",
    "hydra/sweeper=halving",
    "hydra.sweeper.min_epochs=1",
)


# ------------------------------------------------------------------ rung arithmetic


@pytest.mark.parametrize(
    ("min_epochs", "max_epochs", "eta", "expected"),
    [
        (2, 60, 3, [2, 6, 18, 54, 60]),
        (1, 9, 3, [1, 3, 9]),
        (1, 10, 2, [1, 2, 4, 8, 10]),
        (60, 60, 3, [60]),
        (7, 60, 4, [7, 28, 60]),
    ],
)
def test_rung_epochs(min_epochs: int, max_epochs: int, eta: int, expected: list[int]) -> None:
    assert rung_epochs(min_epochs, max_epochs, eta) == expected


def test_points_kept_per_rung() -> None:
    def chain(points: int, eta: int, rungs: int) -> list[int]:
        counts = [points]
        for _ in range(rungs - 1):
            counts.append(kept_count(counts[-1], eta))
        return counts

    assert chain(19, 3, 5) == [19, 6, 2, 1, 1]  # sweep=wce
    assert chain(133, 3, 5) == [133, 44, 14, 4, 1]  # sweep=focal_alpha
    assert chain(10, 2, 4) == [10, 5, 2, 1]
    # member-epochs of sweep=wce at m=2, M=60: 13 points stop at 2, 4 at 6, 1 at 18, 1 goes on
    epochs = rung_epochs(2, 60, 3)
    counts = chain(19, 3, len(epochs))
    stopped = [counts[k] - counts[k + 1] for k in range(len(epochs) - 1)] + [counts[-1]]
    assert sum(n * e for n, e in zip(stopped, epochs, strict=True)) == 13 * 2 + 4 * 6 + 18 + 60


def _points(settings: Sequence[str], values: Sequence[str]) -> list[Point]:
    jobs = [[f"seed={s}", f"loss.scale={v}"] for s in settings for v in values]
    return make_points(jobs, [str(n) for n in range(len(jobs))], ["loss.scale"])


def test_each_setting_keeps_its_own_best_third_ties_as_in_the_report() -> None:
    points = _points(["0", "1"], ["a", "b", "c", "d", "e", "f"])  # folders 0-5 and 6-11
    scores = {str(n): {"val_gmean": 0.5, "val_auc": 0.5} for n in range(12)}
    scores["3"] = {"val_gmean": 0.9, "val_auc": 0.1}
    scores["1"] = {"val_gmean": 0.8, "val_auc": 0.2}
    scores["5"] = {"val_gmean": 0.8, "val_auc": 0.3}  # ties with 1: the higher AUC wins
    scores["7"] = None  # failed: never kept
    scores["10"] = {"val_gmean": 0.7, "val_auc": 0.9}
    scores["8"] = {"val_gmean": 0.6, "val_auc": 0.5}
    scores["9"] = {"val_gmean": 0.6, "val_auc": 0.5}  # full tie with 8: the first folder wins
    kept = keep_best(points, scores, eta=3, metric="val_gmean")
    assert [p.folder for p in kept] == ["3", "5", "8", "10"]
    assert [p.folder for p in best_per_setting(points, scores, "val_gmean")] == ["3", "10"]
    by_auc = keep_best(points, scores, eta=3, metric="val_auc")
    assert [p.folder for p in by_auc] == ["0", "2", "8", "10"]  # AUC ties: G-mean, then folder


def test_a_setting_whose_points_all_failed_keeps_none() -> None:
    points = _points(["0"], ["a", "b", "c"])
    assert keep_best(points, {"0": None, "1": None, "2": None}, 3, "val_gmean") == []


def test_points_split_hyperparameters_from_the_setting() -> None:
    (point, *_) = _points(["4"], ["x"])
    assert point.setting == ("seed=4",)
    assert point.overrides == ("seed=4", "loss.scale=x")
    assert hyperparameter_keys(["seed", "loss.scale", "ir", "loss.gamma"]) == [
        "loss.scale",
        "loss.gamma",
    ]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ((1, 1, 9, "val_gmean"), "hydra.sweeper.eta=1 is out of range; accepted: an integer >= 2"),
        ((2.5, 1, 9, "val_gmean"), "hydra.sweeper.eta=2.5 is out of range"),
        (
            (3, 10, 9, "val_gmean"),
            "hydra.sweeper.min_epochs=10 is out of range; accepted: an integer from 1 to "
            "max_epochs=9",
        ),
        ((3, 0, 9, "val_gmean"), "hydra.sweeper.min_epochs=0 is out of range"),
        ((3, 1, 0, "val_gmean"), "hydra.sweeper.max_epochs=0 is out of range"),
        ((3, 1, 9, "gmean"), "hydra.sweeper.metric='gmean' is unknown; accepted: val_gmean"),
    ],
)
def test_bad_settings_name_the_value_and_the_accepted_ones(values: tuple, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(".", r"\.")):
        check_halving(*values)


def test_a_grid_without_a_hyperparameter_axis_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"needs a hyperparameter axis.*swept keys: seed, ir"):
        hyperparameter_keys(["seed", "ir"])


# ------------------------------------------------------------------ the sweeper, end to end


def record_stopped(record: HalvingRecord) -> list[str]:
    """The folders of the points the sweep stopped before its last rung."""
    return [p.folder for p in record.points if p.folder not in record.rungs[-1].kept]


def _metrics(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text())


def _compared(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in NOT_COMPARED}


@pytest.fixture(scope="module")
def halving_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The halving sweep ``SWEEP`` run once: its folder and its printed output."""
    tmp = tmp_path_factory.mktemp("halving")
    sweep = tmp / "runs" / "halving"
    done = run_train([*SWEEP, f"hydra.sweep.dir={sweep}"], tmp)
    assert done.returncode == 0, done.stderr
    return sweep, done.stdout


def test_rungs_train_every_point_then_each_seeds_best(halving_sweep: tuple[Path, str]) -> None:
    sweep, stdout = halving_sweep
    record = HalvingRecord.read(sweep / RECORD_FILE)
    assert [(r.rung, r.epochs, len(r.scores), r.trained) for r in record.rungs] == [
        (0, 1, 6, 6),
        (1, 3, 2, 2),
    ]
    first, last = record.rungs
    assert first.kept == last.kept and len(first.kept) == 2
    assert "imbloss: halving rung 1 of 2 (1 epoch): 6 points in (6 trained, 0 done before)" in (
        stdout
    )
    assert "imbloss: halving rung 2 of 2 (3 epochs): 2 points in (2 trained, 0 done before)" in (
        stdout
    )
    assert stdout.count("imbloss: halving chose loss.scale=") == 2
    assert stdout.count(" for seed=0 (folder ") == stdout.count(" for seed=1 (folder ") == 1
    points = {p.folder: p for p in record.points}
    assert {points[f].setting[-1] for f in first.kept} == {"seed=0", "seed=1"}  # one per seed
    for n in range(6):
        folder = sweep / str(n)
        metrics = _metrics(folder)
        checkpoints = sorted(p.name for p in (folder / "checkpoints").iterdir())
        if str(n) in first.kept:  # trained to the end: the finished run's files
            assert (metrics["epochs"], metrics["stopped_at_epoch"]) == (3, None)
            assert checkpoints == ["best.ckpt"]
            assert first.scores[str(n)]["val_gmean"] <= metrics["val_gmean"]
        else:  # stopped at rung 0, kept with its figures and the checkpoint to continue from
            assert (metrics["epochs"], metrics["stopped_at_epoch"]) == (1, 1)
            assert checkpoints == ["best.ckpt", "last.ckpt"]
            assert read_checkpoint(folder / "checkpoints" / "last.ckpt")["epoch"] == 0
            assert metrics["val_gmean"] == first.scores[str(n)]["val_gmean"]
        assert f"seed={metrics['seed']}" in points[str(n)].setting


def test_a_continued_point_equals_the_run_trained_in_one_go(
    halving_sweep: tuple[Path, str], tmp_path: Path
) -> None:
    sweep, _ = halving_sweep
    record = HalvingRecord.read(sweep / RECORD_FILE)
    chosen = next(p for p in record.points if p.folder in record.rungs[-1].kept)
    one_go = tmp_path / "one_go"
    single = [o for o in chosen.overrides if not o.startswith("hydra/sweeper")]
    done = run_train([*single, f"hydra.run.dir={one_go}"], tmp_path)
    assert done.returncode == 0, done.stderr
    continued = sweep / chosen.folder
    assert _compared(_metrics(continued)) == _compared(_metrics(one_go))
    curves = (continued / "csv" / "metrics.csv").read_text()
    assert curves == (one_go / "csv" / "metrics.csv").read_text()


def test_a_rerun_of_a_finished_sweep_trains_nothing(halving_sweep: tuple[Path, str]) -> None:
    sweep, _ = halving_sweep
    before = {p: p.stat().st_mtime_ns for p in sweep.glob("*/metrics.json")}
    again = run_train([*SWEEP, f"hydra.sweep.dir={sweep}"], sweep.parent)
    assert again.returncode == 0, again.stderr
    assert "imbloss: halving rung" not in again.stdout  # both rungs were recorded as finished
    assert again.stdout.count("imbloss: halving chose") == 2
    assert {p: p.stat().st_mtime_ns for p in sweep.glob("*/metrics.json")} == before


def test_a_sweep_killed_in_a_later_rung_resumes_there(
    halving_sweep: tuple[Path, str], tmp_path: Path
) -> None:
    reference, _ = halving_sweep
    sweep = tmp_path / "sweep"
    # SIGKILL in rung 1's first job once its second epoch is saved (rung 0 trains one epoch)
    kill = ("+callbacks.kill._target_=helpers.interrupt.KillAfterEpoch", "+callbacks.kill.epoch=1")
    command = [*SWEEP, *kill, "+callbacks.kill.job=0", f"hydra.sweep.dir={sweep}"]
    first = run_train(command, tmp_path, PYTHONPATH=TESTS_ON_PATH)
    assert first.returncode == -9, first.stderr
    record = HalvingRecord.read(sweep / RECORD_FILE)
    assert [r.rung for r in record.rungs] == [0]
    second = run_train(command, tmp_path, PYTHONPATH=TESTS_ON_PATH)
    assert second.returncode == 0, second.stderr
    assert "halving rung 1 of 2" not in second.stdout  # rung 0 is not run again
    assert "imbloss: halving rung 2 of 2 (3 epochs): 2 points in" in second.stdout
    assert "(2 epochs done)" in second.stdout + second.stderr  # continued from its last.ckpt
    resumed = HalvingRecord.read(sweep / RECORD_FILE)
    expected = HalvingRecord.read(reference / RECORD_FILE)
    assert [r.kept for r in resumed.rungs] == [r.kept for r in expected.rungs]
    assert [r.scores for r in resumed.rungs] == [r.scores for r in expected.rungs]
    for folder in resumed.rungs[-1].kept:
        assert _compared(_metrics(sweep / folder)) == _compared(_metrics(reference / folder))


def test_the_stacked_launcher_gives_the_same_rungs_and_choices(
    halving_sweep: tuple[Path, str], tmp_path: Path
) -> None:
    reference, _ = halving_sweep
    sweep = tmp_path / "sweep"
    done = run_train([*SWEEP, "hydra/launcher=stacked", f"hydra.sweep.dir={sweep}"], tmp_path)
    assert done.returncode == 0, done.stderr
    stacked = HalvingRecord.read(sweep / RECORD_FILE)
    expected = HalvingRecord.read(reference / RECORD_FILE)
    assert [(r.epochs, r.kept) for r in stacked.rungs] == [
        (r.epochs, r.kept) for r in expected.rungs
    ]
    assert "stacked group of 6 jobs on cpu" in done.stderr + done.stdout  # rung 0: one stack
    assert "continuing a stacked pass of 2 members after 1 epochs" in done.stderr + done.stdout
    for n in range(6):
        metrics, separate = _metrics(sweep / str(n)), _metrics(reference / str(n))
        assert (metrics["engine"], metrics["stopped_at_epoch"]) == (
            "stacked",
            separate["stopped_at_epoch"],
        )
        # the same training as the separate runs, to float rounding (tests/test_stacked_*.py)
        assert metrics["val_gmean"] == pytest.approx(separate["val_gmean"], abs=1e-5)
        full, full_separate = metrics["full_test"]["gmean"], separate["full_test"]["gmean"]
        assert full == pytest.approx(full_separate, abs=1e-5)
    for n in record_stopped(stacked):  # a stopped member keeps its slice of the pass's state
        assert (sweep / n / "checkpoints" / "last_stacked.pt").is_file()
        assert not (sweep / n / "checkpoints" / "last.ckpt").exists()
    assert not (sweep / ".stacked").exists()  # pass states removed once their members finished


@pytest.mark.slow
def test_submitits_launcher_gives_the_same_rungs_and_figures(
    halving_sweep: tuple[Path, str], tmp_path: Path
) -> None:
    """hydra/launcher=slurm's code path (submitit), run by submitit's local executor: each rung
    one batch of submitted jobs, each later rung continuing its points from their last.ckpt."""
    reference, _ = halving_sweep
    sweep = tmp_path / "sweep"
    done = run_train(
        [*SWEEP, "hydra/launcher=submitit_local", f"hydra.sweep.dir={sweep}"], tmp_path
    )
    assert done.returncode == 0, done.stderr
    submitted = HalvingRecord.read(sweep / RECORD_FILE)
    expected = HalvingRecord.read(reference / RECORD_FILE)
    assert [(r.epochs, r.kept, r.scores) for r in submitted.rungs] == [
        (r.epochs, r.kept, r.scores) for r in expected.rungs
    ]
    assert len(list((sweep / ".submitit").glob("*/*_submitted.pkl"))) == 6 + 2  # rung 0, rung 1
    for n in range(6):
        assert _compared(_metrics(sweep / str(n))) == _compared(_metrics(reference / str(n)))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["hydra.sweeper.eta=1"], "hydra.sweeper.eta=1 is out of range; accepted: an integer >= 2"),
        (["hydra.sweeper.min_epochs=4"], "hydra.sweeper.min_epochs=4 is out of range"),
        (["loss.scale=0.5"], "hydra/sweeper=halving needs a hyperparameter axis"),
    ],
)
def test_bad_values_exit_2_before_anything_is_trained(
    tmp_path: Path, extra: list[str], message: str
) -> None:
    sweep = tmp_path / "sweep"
    grid = (
        [o for o in SWEEP if not o.startswith("loss.scale=")]
        if "loss.scale=0.5" in extra
        else SWEEP
    )
    done = run_train([*grid, *extra, f"hydra.sweep.dir={sweep}"], tmp_path)
    assert done.returncode == 2, done.stderr
    assert f"imbloss: error: {message}" in done.stderr
    assert "nothing was trained" in done.stderr
    assert not list(sweep.glob("*/metrics.json")) and not list(sweep.glob("*/.hydra"))


def test_the_report_sets_halving_beside_the_full_grid(
    halving_sweep: tuple[Path, str], tmp_path: Path
) -> None:
    halving, _ = halving_sweep
    root = halving.parent
    grid_sweep = [o for o in SWEEP if not o.startswith("hydra/sweeper") and "sweeper." not in o]
    done = run_train([*grid_sweep, f"hydra.sweep.dir={root / 'grid'}"], tmp_path)
    assert done.returncode == 0, done.stderr
    report = build_report(root, out_dir=tmp_path / "report", formats=("md", "csv"))
    runs = report.runs
    assert (runs["tuning"] == "halving").sum() == 6 and (runs["tuning"] == "grid").sum() == 6
    assert (runs["status"] == "stopped").sum() == 4  # rung 0 stopped two points per seed
    loaded = load_report(tmp_path / "report")
    cost = loaded.tables["tuning_cost"]
    for seed in (0, 1):
        rows = cost[cost["seed"] == seed].set_index("tuning")
        assert rows.loc["grid", "member_epochs"] == 3 * 3  # 3 points x 3 epochs
        assert rows.loc["halving", "member_epochs"] == 2 * 1 + 3  # 2 stopped at 1, 1 to 3
        assert rows.loc["halving", "epochs_share"] == pytest.approx(5 / 9)
        chosen = rows.loc["halving", "chosen"]
        grid_runs = runs[(runs["tuning"] == "grid") & (runs["seed"] == seed)]
        same_point = grid_runs[grid_runs["hparams"] == chosen].iloc[0]
        # the point halving trained to the end is the run the grid trained in one go
        assert rows.loc["halving", "full_gmean"] == same_point["full_gmean"]
    rungs = loaded.tables["halving_rungs"]
    columns = ["seed", "rung", "points", "kept"]
    assert sorted(rungs[columns].itertuples(index=False, name=None)) == [
        (0, 0, 3, 1),
        (0, 1, 1, 1),
        (1, 0, 3, 1),
        (1, 1, 1, 1),
    ]
    for row in rungs[rungs["rung"] == 0].itertuples():
        grid_runs = runs[(runs["tuning"] == "grid") & (runs["seed"] == row.seed)]
        best = grid_runs.loc[grid_runs["full_gmean"].idxmax(), "hparams"]
        chosen = cost[(cost["seed"] == row.seed) & (cost["tuning"] == "halving")]["chosen"]
        assert row.best_in  # rung 0 holds every point
        assert row.best_kept == (best == chosen.iloc[0])
    assert "### What tuning costs" in (tmp_path / "report" / "report.md").read_text()


def test_a_stopped_run_continues_from_its_own_files_only(compose_train_cfg, tmp_path: Path) -> None:
    cfg = compose_train_cfg(*FAST_OVERRIDES, "trainer.max_epochs=3")
    folder = tmp_path / "run"
    (folder / "checkpoints").mkdir(parents=True)
    claim_folder(folder, OmegaConf.to_container(cfg, resolve=False))  # as its first rung did
    write_json(folder / "metrics.json", {"status": "ok", "stopped_at_epoch": 1})
    with pytest.raises(RunFileError, match="stopped at epoch 1, to be continued to epoch 3, but"):
        start_job(folder, cfg)  # never retrained from the start
    (folder / "checkpoints" / "last_stacked.pt").write_bytes(b"state")
    with pytest.raises(RunFileError, match=r"only a stacked pass continues it"):
        start_job(folder, cfg)
    start = start_job(folder, cfg, stacked=True)
    assert start.stacked_state == folder / "checkpoints" / "last_stacked.pt"
    with open_dict(cfg):
        cfg.stop_at_epoch = 1  # asked for no more than it trained: finished for this request
    assert start_job(folder, cfg).finished_metrics == {"status": "ok", "stopped_at_epoch": 1}
    cfg.stop_at_epoch = 4
    with pytest.raises(ConfigError, match=r"stop_at_epoch=4 is out of range; accepted: an integer "
                       r"from 1 to trainer.max_epochs=3, or null"):  # fmt: skip
        start_job(folder, cfg)


def test_the_tuning_measurement_preset_is_the_stated_setting(compose_train_cfg) -> None:
    cfg = compose_train_cfg("campaign=tuning", "sweep=wce", "hydra/sweeper=halving")
    setting = (cfg.experiment.name, cfg.ir, cfg.seed, cfg.threads, cfg.trainer.max_epochs)
    assert setting == ("fmnist_step", 100, 0, 1, 10)
    assert (cfg.trainer.precision, cfg.hydra.launcher.n_jobs) == ("32-true", 2)
    assert (cfg.dataset.protocol, cfg.dataset.batch_size, cfg.optimizer.lr) == ("step", 500, 0.001)
    assert len(cfg.hydra.sweeper.params["loss.scale"].split(",")) == 19
