"""A campaign's claims page from its file and its runs: verdicts by the fixed rules, both weight
sets, Holm, completeness, the pairing figures, and the README's headline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from imbloss.results import __main__ as results_cli
from imbloss.results.config import load_campaign
from imbloss.results.page import README_BEGIN, README_END, CampaignRuns, claim_cases, judge

CAMPAIGN = {
    "name": "tiny",
    "title": "Tiny campaign",
    "dir": "results/tiny",
    "page": "docs/tiny.md",
    "job_config": "replicates",
    "replicate_keys": ["seed", "dataset.seed"],
    "replicates": 5,
    "fixed": {"experiment": "fmnist_step"},
    "stages": [{"name": "main", "grid": {"ir": 100, "loss": ["pf", "wce", "ce"]}}],
    "rules": {"fixed_on": "2026-12-03", "test_set": "full_test", "margin": 2.0, "verdicts_at": [5]},
    "claims": [
        {
            "source": "S",
            "kind": "difference",
            "text": "PF beats {b} at IR={ir}",
            "a": {"loss": "pf"},
            "b": {"loss": ["wce", "ce"]},
            "where": {"ir": 100},
        },
        {
            "source": "S",
            "kind": "similarity",
            "text": "WCE is like CE",
            "reference": {"loss": "wce"},
            "others": {"loss": "ce"},
            "where": {"ir": 100},
        },
    ],
    "headline": {"a": {"loss": "pf"}, "b": {"loss": ["wce", "ce"]}, "where": {"ir": [100]}},
}
# whole-split G-mean by loss and replicate: a shared replicate effect, PF 3 points above WCE,
# CE within 0.2 of WCE
SHARED = [0.0, 0.02, -0.01, 0.03, 0.01]
GMEAN = {
    "pf": [0.83 + s + d for s, d in zip(SHARED, [0.002, -0.001, 0.0, 0.001, -0.002], strict=True)],
    "wce": [0.80 + s for s in SHARED],
    "ce": [0.801 + s + d for s, d in zip(SHARED, [0.001, -0.001, 0.0, 0.002, -0.002], strict=True)],
}


def _write_run(
    folder: Path, loss: str, k: int, last_shift: float = 0.0, val_gmean: float = 0.5
) -> None:
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "config.yaml").write_text(
        yaml.safe_dump({"loss": {"name": loss}, "seed": k, "dataset": {"seed": k}, "ir": 100})
    )
    g = GMEAN[loss][k]
    figures = {"gmean": g - 0.01, "full_test": {"gmean": g}}
    last = {"gmean": g - 0.01, "full_test": {"gmean": g + last_shift}}
    metrics = {
        "loss": loss,
        "seed": k,
        "ir": 100,
        "fit_time_s": 600.0,
        "selected_epoch": 7,
        "val_gmean": val_gmean,
        **figures,
        "last": last,
        "environment": {"device": "Test CPU", "bf16_isa": ["amx_bf16"], "threads": 1},
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "campaigns").mkdir()
    (tmp_path / "campaigns" / "tiny.yaml").write_text(yaml.safe_dump(CAMPAIGN))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _fill(repo: Path, replicates: range = range(5), losses=("pf", "wce", "ce")) -> Path:
    folder = repo / "results" / "tiny"
    for loss in losses:
        for k in replicates:
            _write_run(folder / f"ir=100,loss={loss},seed={k}", loss, k)
    return folder


def _verdicts(repo: Path, weights: str = "selected") -> dict[str, str]:
    campaign = load_campaign("tiny", repo)
    runs = CampaignRuns(campaign, campaign.root(repo))
    return {
        case.text: judge(runs, case, weights, 5, campaign.rules).verdict
        for case in claim_cases(campaign)
    }


def test_claims_expand_and_are_judged_by_the_rules(repo: Path) -> None:
    _fill(repo)
    assert _verdicts(repo) == {
        "PF beats WCE-loss at IR=100": "supported",
        "PF beats CE at IR=100": "supported",
        "WCE is like CE": "supported",  # TOST: within ±2 points
    }


def test_a_cell_missing_one_replicate_decides_nothing(repo: Path) -> None:
    _fill(repo, range(4))
    _fill(repo, range(4, 5), losses=("pf", "ce"))  # wce's replicate 4 has not run
    verdicts = _verdicts(repo)
    assert verdicts["PF beats WCE-loss at IR=100"] == "not decided"
    assert verdicts["PF beats CE at IR=100"] == "supported"


def test_the_page_and_the_readme_headline(repo: Path) -> None:
    _fill(repo)
    readme = repo / "README.md"
    readme.write_text(f"# X\n{README_BEGIN}\nold\n{README_END}\nrest\n")
    out = repo / "docs" / "tiny.md"
    code = results_cli.main(
        ["page", "--campaign", "tiny", "--out", str(out), "--readme", str(readme)]
    )
    assert code == 0
    page = out.read_text()
    assert page.startswith("# Results: Tiny campaign")
    assert "How a claim is decided (fixed on 2026-12-03)" in page
    assert "selected weights: 3 supported (2 after Holm), 0 contradicted, 0 not decided" in page
    # the replicate effect is shared by the three losses: pairing pays
    pairing = page[page.index("## Does pairing") : page.index("## Where the runs ran")]
    row = next(line for line in pairing.splitlines() if line.startswith("| IR=100"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[1] == "3 × 5" and float(cells[4]) > 0.9 and float(cells[7]) > 10
    assert "| Test CPU" in page and "amx_bf16" in page
    assert "## Selections with nothing to choose by" not in page  # every validation G-mean > 0
    assert (repo / "docs" / "figures" / "tiny_against_reference.png").is_file()
    text = readme.read_text()
    assert "old" not in text and text.endswith("rest\n")
    assert "**Replicated over subsamples: 15 of 15 planned runs finished.**" in text
    assert "+3.0 [" in text and "(n=5): **supported**" in text


def test_the_page_names_the_runs_whose_validation_g_mean_was_always_0(repo: Path) -> None:
    folder = _fill(repo, losses=("pf", "wce"))
    _fill(repo, range(4), losses=("ce",))
    _write_run(folder / "ir=100,loss=ce,seed=4", "ce", 4, last_shift=0.05, val_gmean=0.0)
    out = repo / "docs" / "tiny.md"
    assert results_cli.main(["page", "--campaign", "tiny", "--out", str(out)]) == 0
    page = out.read_text()
    start = page.index("## Selections with nothing to choose by")
    section = page[start : page.index("\n## ", start + 1)]
    assert "1 finished run had a validation G-mean of 0 in every epoch" in section
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    # ce's replicate 4: whole-split G-mean 0.801 + 0.01 - 0.002, last 0.05 above it
    assert [[c.strip() for c in row.strip("|").split("|")] for row in rows] == [
        ["`ir=100,loss=ce,seed=4`", "7", "80.90", "85.90"]
    ]
