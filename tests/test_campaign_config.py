"""Campaigns as configuration: the files, the jobs and folders they plan, the runner's commands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from imbloss.errors import ConfigError
from imbloss.results import __main__ as results_cli
from imbloss.results.config import job_dirname, load_campaign, parse_campaign
from imbloss.results.plan import (
    config_holds,
    grid_commands,
    jobs_side_by_side,
    parse_extras,
    reuse_finished,
    stage_status,
    time_left,
)

from conftest import REPO_ROOT

# a process that holds an flock on argv[1] until its stdin closes
HOLD_LOCK = (
    "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
    "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()"
)
LOSSES = {"pf", "wce", "focal", "focal_alpha", "ldam", "wldam", "ce", "bsm"}


def test_the_fmnist_campaign_plans_the_issues_cells() -> None:
    campaign = load_campaign("fmnist", REPO_ROOT)
    counts = {stage.name: len(campaign.stage_jobs(stage)) for stage in campaign.stages}
    # 8 losses x 5 replicates per IR; 3 losses x 2 noise levels x 5; 2 x 3 samplers x 5;
    # 5 losses x 2 minority fractions x 5; 5 headline losses x 2 IRs x replicates 5-9
    assert counts == {
        "ir100": 40,
        "ir200": 40,
        "ir10": 40,
        "label_noise": 30,
        "resampling": 30,
        "binary": 50,
        "headline10": 50,
    }
    ir100 = campaign.stage_jobs(campaign.stage("ir100"))
    assert {job["loss"] for job in ir100} == LOSSES
    assert sorted({int(job["seed"]) for job in ir100}) == [0, 1, 2, 3, 4]
    # replicates run outermost: replicate 0 of every loss first
    assert [job["seed"] for job in ir100[:8]] == ["0"] * 8
    headline = campaign.stage_jobs(campaign.stage("headline10"))
    assert sorted({int(job["seed"]) for job in headline}) == [5, 6, 7, 8, 9]
    assert campaign.fixed["trainer.precision"] == "bf16-mixed"
    binary = campaign.stage_jobs(campaign.stage("binary"))
    full = campaign.full_overrides(binary[0])
    assert full["trainer.precision"] == "32-true" and full["experiment"] == "fmnist_binary"
    assert full["dataset.seed"] == full["seed"]


def test_the_one_subsample_campaign_names_the_committed_folders() -> None:
    campaign = load_campaign("fmnist_one_subsample", REPO_ROOT)
    counts = {stage.name: len(campaign.stage_jobs(stage)) for stage in campaign.stages}
    assert counts == {"precision": 18, "schedule": 4, "ir100": 28, "ir200": 28, "ir10": 24}
    precision = {job_dirname(j) for j in campaign.stage_jobs(campaign.stage("precision"))}
    ir100 = {job_dirname(j) for j in campaign.stage_jobs(campaign.stage("ir100"))}
    assert len(precision & ir100) == 9  # the float32 pf, wce, ldam x seeds 0-2: trained once
    assert campaign.replicate_keys == ("seed",)
    finished = stage_status(campaign, campaign.stage("ir200"), campaign.root(REPO_ROOT))
    assert (finished.finished, finished.to_run) == (28, 0)


def test_a_jobs_folder_is_hydras_override_dirname(compose_train_cfg) -> None:
    campaign = load_campaign("fmnist", REPO_ROOT)
    for stage in campaign.stages:
        grid = stage.grids[-1]
        command = grid_commands(campaign, grid, Path("/tmp/campaign"))[-1]
        job = campaign.grid_jobs(grid)[-1]
        # one job of the multirun: every swept key at the job's value
        overrides = [arg for arg in command[1:] if not arg.startswith("hydra.sweep.dir")]
        single = [
            f"{a.split('=')[0]}={job[a.split('=')[0]]}" if a.split("=")[0] in job else a
            for a in overrides
        ]
        cfg = compose_train_cfg(*single)
        assert cfg.hydra.job.override_dirname == job_dirname(job), stage.name
        assert cfg.hydra.sweep.subdir == job_dirname(job)
        assert cfg.seed == cfg.dataset.seed == int(job["seed"])
        assert cfg.threads == 1 and cfg.hydra.launcher.n_jobs == 2


def test_grid_commands_one_multirun_per_replicate() -> None:
    campaign = load_campaign("fmnist", REPO_ROOT)
    grid = campaign.stage("ir100").grids[0]
    commands = grid_commands(campaign, grid, Path("/r"), replicates=2, extras={"a.b": "1"})
    assert len(commands) == 2
    assert commands[1] == [
        "-m",
        "campaign=replicates",
        "hydra.sweep.dir=/r",
        "hydra.job.config.override_dirname.exclude_keys="
        "[a.b,campaign,dataset.seed,experiment,trainer.max_epochs,trainer.precision]",
        "experiment=fmnist_step",
        "trainer.max_epochs=60",
        "trainer.precision=bf16-mixed",
        "a.b=1",
        "seed=1",
        "dataset.seed=1",
        "ir=100",
        "loss=pf,wce,focal,focal_alpha,ldam,wldam,ce,bsm",
    ]
    # a stage's own fixed keys replace the campaign's, and name the folders
    binary = grid_commands(campaign, campaign.stage("binary").grids[0], Path("/r"), 1)[0]
    assert "experiment=fmnist_binary" in binary and "experiment=fmnist_step" not in binary
    assert binary[3].endswith("[campaign,dataset.seed,trainer.max_epochs]")


def test_overrides_after_the_separator_may_not_name_jobs() -> None:
    campaign = load_campaign("fmnist", REPO_ROOT)
    assert parse_extras(["trainer.max_epochs=1", "paths.data_dir=/d"], campaign) == {
        "trainer.max_epochs": "1",
        "paths.data_dir": "/d",
    }
    with pytest.raises(ConfigError, match=r"'loss'.*names the campaign's jobs"):
        parse_extras(["loss=pf"], campaign)
    with pytest.raises(ConfigError, match=r"'dataset\.seed'"):
        parse_extras(["dataset.seed=3"], campaign)
    with pytest.raises(ConfigError, match="is not key=value"):
        parse_extras(["trainer.max_epochs"], campaign)


def _campaign(**changes: object) -> dict[str, object]:
    raw: dict[str, object] = {
        "name": "tiny",
        "dir": "results/tiny",
        "page": "docs/tiny.md",
        "job_config": "replicates",
        "replicates": 2,
        "stages": [{"name": "a", "grid": {"loss": ["pf", "ce"]}}],
    }
    raw.update(changes)
    return raw


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"replicates": 0}, r"replicates=0 is not a set of replicates"),
        ({"replicates": [1, 1]}, r"replicates=\[1, 1\] is not a set"),
        ({"stages": []}, "has no stages"),
        ({"stages": [{"name": "a", "grid": {}}]}, "is empty"),
        (
            {"stages": [{"name": "a", "grid": {"x": 1}}, {"name": "a", "grid": {"x": 2}}]},
            "names a stage twice",
        ),
        ({"claims": [{"kind": "better", "text": "t"}]}, "kind='better' is unknown; accepted"),
        ({"claims": [{"kind": "difference", "text": "t", "a": {}}]}, r"lacks b"),
        ({"rules": {"similarity": "t-test"}}, "accepted: tost, interval"),
    ],
)
def test_a_bad_campaign_file_is_refused_with_the_reason(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_campaign(_campaign(**changes))


def test_an_unknown_campaign_or_stage_names_the_accepted_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert results_cli.main(["status", "--campaign", "nope"]) == 2
    assert "unknown campaign 'nope'" in capsys.readouterr().err
    assert results_cli.main(["run", "table9"]) == 2
    assert "accepted: ir100, ir200, ir10, label_noise" in capsys.readouterr().err
    assert results_cli.main(["status", "--", "x=1"]) == 2
    assert "go with 'run' only" in capsys.readouterr().err


def _finished_run(folder: Path, loss: str, seed: int, data_seed: int) -> None:
    (folder / ".hydra").mkdir(parents=True)
    config = {"loss": {"name": loss}, "seed": seed, "dataset": {"seed": data_seed}}
    config["trainer"] = {"precision": "bf16-mixed"}
    (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    (folder / "metrics.json").write_text(f'{{"loss": "{loss}"}}')
    (folder / "checkpoints").mkdir()
    (folder / "checkpoints" / "best.ckpt").write_bytes(b"weights")
    (folder / "job.lock").write_text("")


def test_reuse_copies_an_earlier_run_of_the_same_job_without_checkpoints(tmp_path: Path) -> None:
    raw = _campaign(
        replicate_keys=["seed", "dataset.seed"],
        reuse=[{"dir": "results/old", "add": {"trainer.precision": "bf16-mixed"}}],
    )
    campaign = parse_campaign(raw)
    old = tmp_path / "results" / "old"
    for seed in (0, 1):  # the earlier runs all trained on subsample 0
        _finished_run(old / f"loss=pf,seed={seed},trainer.precision=bf16-mixed", "pf", seed, 0)
    _finished_run(old / "loss=ce,seed=0,trainer.precision=bf16-mixed", "pf", 0, 0)  # not ce
    folder = tmp_path / "results" / "tiny"
    copied = reuse_finished(campaign, campaign.jobs(), folder, tmp_path)
    # replicate 1 is seed 1 on subsample 1: the earlier seed-1 run is another job
    assert copied == ["loss=pf,seed=0 (from results/old)"]
    target = folder / "loss=pf,seed=0"
    assert (target / "metrics.json").read_text() == '{"loss": "pf"}'
    assert not (target / "checkpoints").exists() and not (target / "job.lock").exists()
    assert sorted(p.name for p in folder.iterdir()) == ["loss=pf,seed=0"]
    assert reuse_finished(campaign, campaign.jobs(), folder, tmp_path) == []  # once


def test_config_holds_reads_values_and_group_names() -> None:
    config = {"ir": 100.0, "loss": {"name": "pf"}, "dataset": {"seed": 3, "label_noise": 0.2}}
    assert config_holds(config, "ir", "100") and config_holds(config, "loss", "pf")
    assert config_holds(config, "dataset.seed", "3") and config_holds(
        config, "dataset.label_noise", "0.2"
    )
    assert not config_holds(config, "dataset.seed", "0") and not config_holds(config, "ir", "10")
    assert not config_holds(config, "sampler", "none")  # absent
    assert config_holds({"ir": None}, "ir", "null")


def test_run_refuses_emulated_bf16_unless_told(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    (repo / "campaigns").mkdir(parents=True)
    raw = _campaign(fixed={"trainer.precision": "bf16-mixed"})
    (repo / "campaigns" / "tiny.yaml").write_text(yaml.safe_dump(raw))
    (repo / "train.py").write_text("")
    monkeypatch.chdir(repo)
    monkeypatch.setattr(results_cli, "bf16_isa", lambda: [])
    monkeypatch.setattr(results_cli.torch.cuda, "is_available", lambda: False)
    ran: list[list[str]] = []
    monkeypatch.setattr(results_cli, "run_in_own_group", lambda cmd, cwd: ran.append(cmd) or 0)
    assert results_cli.main(["run", "--campaign", "tiny"]) == 2
    assert "has no native bf16" in capsys.readouterr().err and not ran
    assert results_cli.main(["run", "--campaign", "tiny", "--allow-emulated-bf16"]) == 0
    assert [cmd[-2:] for cmd in ran] == [
        ["seed=0", "loss=pf,ce"],
        ["seed=1", "loss=pf,ce"],
    ]
    # float32 jobs are never refused
    ran.clear()
    assert results_cli.main(["run", "--campaign", "tiny", "--", "trainer.precision=32-true"]) == 0
    assert len(ran) == 2


def _timed_run(folder: Path, fit_s: float, evaluation_s: float) -> None:
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(
        f'{{"fit_time_s": {fit_s}, "evaluation_time_s": {evaluation_s}}}'
    )


def test_time_left_takes_each_stages_median_and_the_jobs_side_by_side(tmp_path: Path) -> None:
    stages = [
        {"name": "a", "grid": {"loss": ["pf", "ce", "wce"]}},
        {"name": "b", "grid": {"loss": ["pf", "focal"]}, "fixed": {"ir": 10}},
    ]
    campaign = parse_campaign(_campaign(replicates=1, stages=stages))
    _timed_run(tmp_path / "loss=pf,seed=0", 100, 20)
    _timed_run(tmp_path / "loss=ce,seed=0", 200, 40)
    left = time_left(campaign, tmp_path, side_by_side=2)
    assert left is not None and left.jobs == 3  # wce of a; pf and focal of b
    # a: 1 job at its median (120 + 240) / 2 = 180 s; b has no finished run: 2 jobs at 180 s
    assert left.seconds == pytest.approx(3 * 180) and left.hours == pytest.approx(540 / 7200)
    assert left.sentence() == (
        "About 0.1 h of this machine remain for the 3 jobs left, with 2 jobs side by side, at the "
        "median time of each stage's finished runs (of all finished runs, 3.0 min, for a stage "
        "with none)."
    )
    _timed_run(tmp_path / "ir=10,loss=pf,seed=0", 1000, 0)
    # b's median is now its own run: 1000 s for focal; a still 180 s for wce
    assert time_left(campaign, tmp_path, 1).seconds == pytest.approx(1180)
    assert "one job at a time" in time_left(campaign, tmp_path, 1).sentence()
    assert time_left(campaign, tmp_path / "empty", 2) is None  # nothing measured yet


def test_jobs_side_by_side_reads_the_job_config() -> None:
    fmnist, cifar = (load_campaign(name, REPO_ROOT) for name in ("fmnist", "cifar"))
    assert jobs_side_by_side(fmnist, REPO_ROOT) == 2  # conf/campaign/replicates.yaml
    assert jobs_side_by_side(cifar, REPO_ROOT) == 1  # replicates_gpu: the basic launcher


def test_status_names_the_jobs_training_now_with_their_epochs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "campaigns").mkdir()
    (tmp_path / "campaigns" / "tiny.yaml").write_text(yaml.safe_dump(_campaign(replicates=1)))
    _timed_run(tmp_path / "results" / "tiny" / "loss=pf,seed=0", 300, 0)
    running = tmp_path / "results" / "tiny" / "loss=ce,seed=0"
    (running / "csv").mkdir(parents=True)
    (running / "csv" / "metrics.csv").write_text("epoch,step\n0,54\n16,918\n")
    (running / ".hydra").mkdir()
    (running / ".hydra" / "config.yaml").write_text("trainer:\n  max_epochs: 60\n")
    monkeypatch.chdir(tmp_path)
    campaign = parse_campaign(_campaign(replicates=1))
    # another process holds the folder's lock, as a training job does
    holding = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(running / "job.lock")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holding.stdout is not None and holding.stdout.readline() == "held\n"
        assert stage_status(campaign, campaign.stage("a"), running.parent).running == (
            ("loss=ce,seed=0", 17, 60),
        )
        assert results_cli.main(["status", "--campaign", "tiny"]) == 0
    finally:
        holding.communicate("")
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[-2:] == ["(1", "running)"] and out[0].split()[1] == "1"
    assert out[1] == "  running: loss=ce,seed=0, epoch 17 of 60"
    # no conf/campaign/replicates.yaml in this repository: Hydra's basic launcher, one at a time
    assert out[2].startswith("About 0.1 h of this machine remain for the 1 jobs left, one job at")
    # the holder has ended: the folder is an unfinished job, not a running one
    assert stage_status(campaign, campaign.stage("a"), running.parent).running == ()
