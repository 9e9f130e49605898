"""``docs/results.md``: the campaign's answer, generated from the committed runs alone.

``python -m imbloss.report results/fmnist_step --claims docs/results.md`` writes it. The page holds

- the campaign's progress (jobs finished per stage, cells still missing) and its settings;
- the precision and schedule decisions, each with the paired comparison that backs it;
- the first source's Tables IV and VI as measured (mean ± half-width of the 95 % t interval over
  seeds, on both test sets), the paper's figure beside each cell and the difference; the AUC in
  two readings (of the predicted probabilities and of the predicted labels), since the paper does
  not say which it computed;
- paired comparisons against PF on the whole test split (mean difference, 95 % interval,
  wins/ties/losses);
- one verdict per claim of the sources: *supported*, *contradicted* or *not decided*.

A verdict uses complete cells only (every seed the plan asks for has finished) and a paired
difference with n >= 3: *supported* when the 95 % interval lies on the claim's side of 0 (or, for a
claim of similarity, inside ±``SIMILAR_PP``), *contradicted* when it lies on the other side (or
outside), *not decided* otherwise. Nothing on the page depends on when it was built.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from imbloss.intervals import t_interval
from imbloss.report.labels import loss_label
from imbloss.report.paired import MIN_DECIDING_N, difference_stats
from imbloss.report.runs import HARD_AUC, STATUS_OK, with_test_set
from imbloss.results import plan
from imbloss.results.figure import FIGURE_NAME, Point, write_against_pf_figure
from imbloss.results.plan import Stage, job_dirname

SUPPORTED, CONTRADICTED, NOT_DECIDED = "supported", "contradicted", "not decided"
# A claim of similarity holds when every 95 % interval lies within ± this many points.
SIMILAR_PP = 2.0
# bf16 is used when the pooled paired interval holds 0 and lies within ± this many points: the
# page's margin of "no difference that matters" (set on 2026-11-30 with 2 of the 9 pairs
# finished; the first version of the rule, with 1 pair finished, said 1.5).
PRECISION_MARGIN_PP = SIMILAR_PP
REPLICATE = ["seed", "data_seed"]
SOURCE_IRS = (10, 100, 200)
# Du et al. 2021, Table IV (G-mean, AUC) and Table VI (minority, majority accuracy), in %.
PAPER_TABLE_IV = {
    10: {
        "wce": (88.43, 94.32),
        "focal": (88.30, 94.35),
        "focal_alpha": (88.13, 94.24),
        "ldam": (88.15, 94.32),
        "wldam": (88.34, 94.28),
        "pf": (88.74, 94.44),
    },
    100: {
        "wce": (82.35, 92.03),
        "focal": (77.13, 89.87),
        "focal_alpha": (80.19, 91.37),
        "ldam": (80.51, 91.50),
        "wldam": (82.58, 92.02),
        "pf": (84.85, 92.93),
    },
    200: {
        "wce": (77.98, 90.35),
        "focal": (75.93, 89.48),
        "focal_alpha": (78.53, 90.07),
        "ldam": (78.88, 91.41),
        "wldam": (78.98, 90.78),
        "pf": (82.52, 91.56),
    },
}
PAPER_TABLE_VI = {
    10: {
        "wce": (81.00, 97.22),
        "focal": (80.20, 98.00),
        "focal_alpha": (80.40, 97.48),
        "ldam": (80.20, 97.92),
        "wldam": (81.40, 96.74),
        "pf": (81.40, 97.30),
    },
    100: {
        "wce": (72.00, 96.90),
        "focal": (62.00, 98.04),
        "focal_alpha": (68.00, 98.02),
        "ldam": (70.00, 96.84),
        "wldam": (72.00, 96.88),
        "pf": (76.00, 96.58),
    },
    200: {
        "wce": (64.00, 97.96),
        "focal": (60.00, 98.38),
        "focal_alpha": (64.00, 97.04),
        "ldam": (68.00, 98.14),
        "wldam": (68.00, 96.10),
        "pf": (72.00, 95.50),
    },
}
TEST_SET_NAMES = {"test": "protocol test split", "full_test": "whole test split"}
# The methods compared with PF, in the order of every table and the figure.
AGAINST_PF = (*plan.SOURCE_LOSSES[1:], *plan.BASELINE_LOSSES)


def _same_number(column: pd.Series, value: float) -> pd.Series:
    """``column == value``, with NaN (a null ``ir``) equal to NaN."""
    return column.isna() if math.isnan(value) else column == value


def _job_number(job: dict[str, str], key: str, default: str) -> float:
    value = job.get(key, default)
    return math.nan if value == "null" else float(value)


@dataclass(frozen=True)
class Setting:
    """Which runs form a cell besides the loss: the campaign's fixed settings and one IR
    (NaN: ``ir=null``, the protocol's natural ratio)."""

    ir: float
    precision: str
    schedule: float
    sampler: str = "none"
    label_noise: float = 0.0
    protocol: str = "step"

    def select(self, runs: pd.DataFrame, loss: str) -> pd.DataFrame:
        mask = (
            (runs["loss"] == loss)
            & (runs["protocol"] == self.protocol)
            & _same_number(runs["ir"], self.ir)
            & (runs["precision"] == self.precision)
            & (runs["schedule"] == self.schedule)
            & (runs["sampler"] == self.sampler)
            & (runs["label_noise"] == self.label_noise)
        )
        return runs[mask]

    def planned(self, job: dict[str, str], loss: str) -> bool:
        """Whether the plan's ``job`` belongs to this setting's cell of ``loss``."""
        protocol = "binary" if job.get("experiment") == "fmnist_binary" else "step"
        ir = _job_number(job, "ir", "nan")
        return (
            job.get("loss") == loss
            and protocol == self.protocol
            and (math.isnan(ir) if math.isnan(self.ir) else ir == self.ir)
            and job.get("trainer.precision") == self.precision
            and float(job.get("trainer.max_epochs", "nan")) == self.schedule
            and job.get("sampler", "none") == self.sampler
            and _job_number(job, "dataset.label_noise", "0") == self.label_noise
        )


@dataclass(frozen=True)
class Stats:
    """Paired differences (a − b, in points): ``STAT_COLUMNS``."""

    n: int
    mean: float
    low: float
    high: float
    wins: int
    ties: int
    losses: int

    def text(self) -> str:
        if self.n == 0:
            return "—"
        interval = f" [{self.low:+.2f}, {self.high:+.2f}]" if self.n >= 2 else ""
        counts = f"{self.wins}/{self.ties}/{self.losses}"
        return f"{self.mean:+.2f}{interval}, W/T/L {counts}, n={self.n}"


def differences(a: pd.DataFrame, b: pd.DataFrame, column: str) -> list[float]:
    """``column`` of ``a`` minus that of ``b`` (in points), replicate by replicate, over the
    replicates both have."""
    pairs = a[[*REPLICATE, column]].merge(b[[*REPLICATE, column]], on=REPLICATE)
    return (100 * (pairs[f"{column}_x"] - pairs[f"{column}_y"])).tolist()


def stats_of(diffs: Sequence[float]) -> Stats:
    """:class:`Stats` of paired differences (n = 0: no pair)."""
    if not diffs:
        return Stats(0, math.nan, math.nan, math.nan, 0, 0, 0)
    return Stats(*difference_stats(diffs))


def paired(a: pd.DataFrame, b: pd.DataFrame, column: str) -> Stats:
    """:class:`Stats` of ``column`` of ``a`` minus that of ``b`` (in points)."""
    return stats_of(differences(a, b, column))


def side_verdict(stats: Stats, complete: bool, better: bool = True) -> str:
    """The verdict on "a beats b" (``better``) or "a is worse than b" from ``stats`` (a − b)."""
    if not complete or stats.n < MIN_DECIDING_N:
        return NOT_DECIDED
    low, high = (stats.low, stats.high) if better else (-stats.high, -stats.low)
    if low > 0:
        return SUPPORTED
    if high < 0:
        return CONTRADICTED
    return NOT_DECIDED


def similar_verdict(all_stats: Sequence[Stats], complete: bool) -> str:
    """The verdict on "all are similar": every interval within ±``SIMILAR_PP``."""
    if not complete or not all_stats or min(s.n for s in all_stats) < MIN_DECIDING_N:
        return NOT_DECIDED
    if all(s.low > -SIMILAR_PP and s.high < SIMILAR_PP for s in all_stats):
        return SUPPORTED
    if any(s.low > SIMILAR_PP or s.high < -SIMILAR_PP for s in all_stats):
        return CONTRADICTED
    return NOT_DECIDED


def combine(verdicts: Iterable[str]) -> str:
    """Several verdicts that must all hold: contradicted if any is, supported if all are."""
    verdicts = list(verdicts)
    if CONTRADICTED in verdicts:
        return CONTRADICTED
    return SUPPORTED if verdicts and all(v == SUPPORTED for v in verdicts) else NOT_DECIDED


def _pp(value: float) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.2f}"


def _cell_text(values: Sequence[float], planned: int) -> str:
    """``84.12 ± 1.30 [n=3/5]`` in %: mean, half-width of the 95 % t interval, runs finished of
    those planned."""
    if not values:
        return f"— [n=0/{planned}]"
    low, high = t_interval(values)
    mean = 100 * sum(values) / len(values)
    half = "" if math.isnan(low) else f" ± {100 * (high - low) / 2:.2f}"
    return f"{mean:.2f}{half} [n={len(values)}/{planned}]"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    escaped = [[str(cell).replace("|", "\\|") for cell in row] for row in rows]
    return tabulate(escaped, headers=list(headers), tablefmt="pipe", disable_numparse=True)


class Campaign:
    """The committed runs of the campaign, read once, and what the plan asks of them."""

    def __init__(self, runs: pd.DataFrame, last_runs: pd.DataFrame) -> None:
        """``runs`` / ``last_runs``: ``load_runs`` frames of the campaign folder (the selected and
        the last weights' figures)."""
        ok = runs["status"] == STATUS_OK
        self.runs = runs[ok].reset_index(drop=True)
        self.last_runs = last_runs[last_runs["status"] == STATUS_OK].reset_index(drop=True)
        self.finished = set(self.runs["run_dir"])  # folder names below the campaign folder
        self.precision = plan.PRECISION or "32-true"
        self.stages = plan.stages(self.precision, plan.EPOCHS)

    def setting(self, ir: float, **keys: object) -> Setting:
        return Setting(float(ir), self.precision, float(plan.EPOCHS), **keys)  # type: ignore[arg-type]

    def planned_seeds(self, setting: Setting, loss: str) -> set[int]:
        """The seeds the plan asks for in this cell."""
        return {
            int(job["seed"])
            for stage in self.stages
            for job in stage.jobs()
            if setting.planned(job, loss)
        }

    def cell(self, setting: Setting, loss: str, frame: pd.DataFrame | None = None) -> pd.DataFrame:
        return setting.select(self.runs if frame is None else frame, loss)

    def complete(self, setting: Setting, *losses: str) -> bool:
        """Every planned seed of every named cell has finished (and the plan asks for some)."""
        for loss in losses:
            planned = self.planned_seeds(setting, loss)
            done = set(self.cell(setting, loss)["seed"].astype(int))
            if not planned or not planned <= done:
                return False
        return True

    def versus(
        self,
        setting: Setting,
        loss: str,
        other: str,
        column: str = "gmean",
        test_set: str = "full_test",
    ) -> Stats:
        frame = with_test_set(self.runs, test_set)
        return paired(self.cell(setting, loss, frame), self.cell(setting, other, frame), column)


def _stage_rows(campaign: Campaign) -> list[list[str]]:
    rows = []
    for stage in campaign.stages:
        jobs = stage.jobs()
        done = sum(job_dirname(job) in campaign.finished for job in jobs)
        waiting = [name for name in stage.needs if name in plan.undecided()]
        decided = f" (waits for the {' and '.join(waiting)} decision)" if waiting else ""
        rows.append([stage.name, stage.purpose + decided, f"{done}/{len(jobs)}"])
    return rows


def _missing_cells(campaign: Campaign, stage: Stage) -> list[str]:
    return [
        f"`{job_dirname(job)}`" for job in stage.jobs() if job_dirname(job) not in campaign.finished
    ]


def _compute_hours(campaign: Campaign) -> float:
    return float(campaign.runs["fit_time_s"].sum()) / 3600


def _time_left(campaign: Campaign) -> str:
    """The jobs not finished, and the wall time they would take, 2 jobs side by side, at the fit
    time of a job per precision: today's code's (``plan.JOB_FIT_S``) where given, else the mean
    of the `fmnist_cnn` runs of the campaign's schedule."""
    left = {
        job_dirname(job)
        for stage in campaign.stages
        for job in stage.jobs()
        if job_dirname(job) not in campaign.finished
    }
    runs = campaign.runs
    cnn = runs[(runs["model"] == "FashionMNISTCNN") & (runs["schedule"] == plan.EPOCHS)]
    means = {**cnn.groupby("precision")["fit_time_s"].mean().to_dict(), **plan.JOB_FIT_S}
    estimates = [
        f"{len(left) * mean / 2 / 3600:.1f} h if they ran in {p} ({mean / 60:.1f} min a job)"
        for p, mean in sorted(means.items())
    ]
    return f"{len(left)} jobs left: about {' or '.join(estimates)}, 2 at a time."


def precision_section(campaign: Campaign) -> list[str]:
    epochs = float(plan.PRECISION_CHECK_EPOCHS)
    fp32, bf16 = (Setting(100.0, p, epochs) for p in ("32-true", "bf16-mixed"))
    full = with_test_set(campaign.runs, "full_test")
    rows, pooled = [], []
    for loss in plan.PRECISION_CHECK_LOSSES:
        diffs = differences(
            campaign.cell(bf16, loss, full), campaign.cell(fp32, loss, full), "gmean"
        )
        rows.append([loss_label(loss), stats_of(diffs).text()])
        pooled += diffs
    all_stats = stats_of(pooled)
    rows.append(["all pairs", all_stats.text()])
    total = len(plan.PRECISION_CHECK_LOSSES) * len(plan.SEEDS)
    if len(pooled) < total:
        outcome = f"pending: {len(pooled)} of {total} pairs have finished"
    elif -PRECISION_MARGIN_PP < all_stats.low <= 0 <= all_stats.high < PRECISION_MARGIN_PP:
        outcome = "bf16-mixed passes: the campaign may use it"
    else:
        bound = all_stats.high if all_stats.high >= PRECISION_MARGIN_PP else all_stats.low
        reason = (
            "its interval excludes 0"
            if not all_stats.low <= 0 <= all_stats.high
            else f"its interval reaches {bound:+.2f}, outside ±{PRECISION_MARGIN_PP}"
        )
        outcome = f"bf16-mixed fails ({reason}): the campaign stays in float32"
    times = [
        pd.concat([campaign.cell(s, loss) for loss in plan.PRECISION_CHECK_LOSSES])["fit_time_s"]
        for s in (fp32, bf16)
    ]
    return [
        "## Precision: bf16-mixed against float32",
        "",
        "Stage `precision`: `pf`, `wce` and `ldam` at IR=100, seeds 0-2, "
        f"{plan.PRECISION_CHECK_EPOCHS} epochs, each seed trained in `32-true` and in "
        "`bf16-mixed` (autocast; the losses stay float32). Paired difference bf16 − float32 of "
        "the whole-split G-mean, in points. Rule: bf16 is used if the 95 % interval of all pairs "
        f"holds 0 and lies within ±{PRECISION_MARGIN_PP} points, the margin this page calls "
        "similar (fixed with 2 of the 9 pairs finished; the rule's first version, with 1 pair "
        "finished, said ±1.5). For scale: the same float32 run (PF, seed 0, 60 epochs) ended at "
        "80.91 with 2 CPU threads (measured before the campaign) and 79.07 with 1 (the "
        "campaign's run gives 79.07 again): 1.84 points from the thread count alone.",
        "",
        _table(["Loss", "bf16 − float32 (pp), 95 % interval, wins/ties/losses"], rows),
        "",
        f"Outcome: **{outcome}**. Recorded decision (`imbloss/results/plan.py`): "
        f"**{plan.PRECISION or 'not yet decided'}**. {_speed_ratio(*times)}",
        "",
    ]


def _speed_ratio(fp32: pd.Series, bf16: pd.Series) -> str:
    """The mean fit times of the check's runs in each precision, and their ratio."""
    if fp32.empty or bf16.empty:
        return ""
    return (
        f"Mean fit time of its finished runs: float32 {fp32.mean() / 60:.1f} min (n={len(fp32)}), "
        f"bf16 {bf16.mean() / 60:.1f} min (n={len(bf16)}), ×{fp32.mean() / bf16.mean():.2f} "
        "(1 thread each, 2 jobs side by side on the 2-core machine)."
    )


def _pf_minus_wce(setting: Setting, full: pd.DataFrame) -> pd.DataFrame:
    """Per replicate, PF's G-mean minus WCE's (column ``diff``) in ``setting``."""
    pf, wce = (setting.select(full, loss) for loss in plan.SCHEDULE_CHECK_LOSSES)
    pairs = pf[[*REPLICATE, "gmean"]].merge(wce[[*REPLICATE, "gmean"]], on=REPLICATE)
    return pairs.assign(diff=pairs["gmean_x"] - pairs["gmean_y"])[[*REPLICATE, "diff"]]


def schedule_section(campaign: Campaign) -> list[str]:
    rows, means, orders = [], [], []
    long_setting = Setting(100.0, campaign.precision, float(plan.SOURCE_EPOCHS))
    short_setting = campaign.setting(100)
    for weights, frame in (("selected", campaign.runs), ("last", campaign.last_runs)):
        full = with_test_set(frame, "full_test")
        for loss in plan.SCHEDULE_CHECK_LOSSES:
            long = long_setting.select(full, loss)
            stats = paired(long, short_setting.select(full, loss), "gmean")
            epochs = ", ".join(f"{int(e)}" for e in long["selected_epoch"].dropna())
            rows.append([weights, loss_label(loss), stats.text(), epochs or "—"])
            if weights == "selected":
                means.append(stats)
        if weights == "selected":  # does PF - WCE keep its sign, seed by seed?
            by_seed = _pf_minus_wce(long_setting, full).merge(
                _pf_minus_wce(short_setting, full), on=REPLICATE
            )
            orders = ((by_seed["diff_x"] > 0) == (by_seed["diff_y"] > 0)).tolist()
    total = len(plan.SCHEDULE_CHECK_LOSSES) * 2
    finished = sum(s.n for s in means)
    if finished < total:
        outcome = f"pending: {finished} of {total} pairs have finished"
    elif all(abs(s.mean) < SIMILAR_PP for s in means) and all(orders):
        outcome = f"{plan.EPOCHS} epochs stand"
    else:
        outcome = (
            f"{plan.EPOCHS} epochs change the result: use {plan.SOURCE_EPOCHS} where it matters"
        )
    return [
        f"## Schedule: {plan.SOURCE_EPOCHS} epochs against {plan.EPOCHS}",
        "",
        f"Stage `schedule`: `pf` and `wce` at IR=100, seeds 0 and 1, trained for the source's "
        f"{plan.SOURCE_EPOCHS} epochs; paired with the campaign's {plan.EPOCHS}-epoch runs of "
        "the same seeds. Whole-split G-mean, long − short, in points, for the weights selected "
        "on validation and for the last weights. Rule: the shorter schedule stands if, for the "
        f"selected weights of both losses, the mean difference is within ±{SIMILAR_PP} points "
        "and PF − WCE keeps its sign on every seed; two seeds give no interval that decides, so "
        "this is a check of the schedule, not a test.",
        "",
        _table(
            [
                "Weights",
                "Loss",
                f"{plan.SOURCE_EPOCHS} − {plan.EPOCHS} epochs (pp)",
                "Selected epochs",
            ],
            rows,
        ),
        "",
        f"Outcome: **{outcome}**. Recorded decision (`imbloss/results/plan.py`): "
        f"**{f'{plan.EPOCHS} epochs' if plan.EPOCHS_CONFIRMED else 'not yet decided'}**.",
        "",
    ]


def _protocol_split_values(campaign: Campaign, ir: int, loss: str, column: str) -> list[float]:
    """The cell's figures ``column`` on the protocol test split, the split the paper reports."""
    return campaign.cell(campaign.setting(ir), loss)[column].dropna().tolist()


def source_table(
    campaign: Campaign,
    paper: dict,
    columns: Sequence[tuple[str, str, int]],
    name: str,
) -> list[str]:
    """Table IV or VI as measured: per IR and loss, each column on both test sets, the paper's
    figure (``paper[ir][loss][index]`` for the column's ``index``) beside the protocol-split
    cell."""
    headers = ["IR", "Method"]
    for _column, label, _index in columns:
        headers += [f"{label}, protocol split", "paper", "Δ", f"{label}, whole split"]
    full = with_test_set(campaign.runs, "full_test")
    rows = []
    for ir in SOURCE_IRS:
        setting = campaign.setting(ir)
        for loss in (*plan.SOURCE_LOSSES, *plan.BASELINE_LOSSES):
            planned = len(campaign.planned_seeds(setting, loss))
            line = [f"IR={ir}", loss_label(loss)]
            for column, _label, index in columns:
                values = _protocol_split_values(campaign, ir, loss, column)
                whole = campaign.cell(setting, loss, full)[column].dropna().tolist()
                figure = paper.get(ir, {}).get(loss)
                source = figure[index] if figure else math.nan
                mean = 100 * sum(values) / len(values) if values else math.nan
                line += [
                    _cell_text(values, planned),
                    _pp(source),
                    _pp(mean - source),
                    _cell_text(whole, planned),
                ]
            rows.append(line)
    return [name, "", _table(headers, rows), ""]


def auc_definition_note(campaign: Campaign, columns: Sequence[tuple[str, str]]) -> list[str]:
    """How far the paper's AUC lies from each of our AUC ``columns`` (name, label): the range of
    measured − paper and its mean absolute value over the cells with a paper figure and finished
    runs (protocol test split); nothing while no such cell has a run."""
    parts = []
    for column, label in columns:
        gaps = []
        for ir, figures in PAPER_TABLE_IV.items():
            for loss, (_gmean, auc) in figures.items():
                values = _protocol_split_values(campaign, ir, loss, column)
                if values:
                    gaps.append(100 * sum(values) / len(values) - auc)
        if not gaps:
            return []
        mean_abs = sum(abs(g) for g in gaps) / len(gaps)
        parts.append(
            f"{label}: measured − paper {min(gaps):+.2f} to {max(gaps):+.2f} points, "
            f"|Δ| {mean_abs:.2f} on average over {len(gaps)} cells"
        )
    return [
        "The paper does not define its AUC. Two readings are measured: the macro one-vs-rest AUC "
        "of the predicted probabilities (*of scores*, the figure every run records) and the same "
        "AUC of the predicted labels (*of predicted labels*: each class scored by the indicator "
        "of being predicted, so AUC_j = (TPR_j + TNR_j) / 2; `imbloss.metrics."
        "hard_prediction_auc`, computed from `predictions.npz`). " + "; ".join(parts) + ".",
        "",
    ]


def _versus_pf(campaign: Campaign) -> Iterator[tuple[int, str, Stats, bool]]:
    """Per IR and method: its paired G-mean difference against PF on the whole test split, and
    whether both cells are complete."""
    for ir in SOURCE_IRS:
        setting = campaign.setting(ir)
        for loss in AGAINST_PF:
            stats = campaign.versus(setting, loss, "pf")
            yield ir, loss, stats, campaign.complete(setting, loss, "pf")


def against_pf(campaign: Campaign) -> list[Point]:
    """The points of the page's figure (:mod:`imbloss.results.figure`)."""
    return [
        Point(ir, loss_label(loss), stats.n, stats.mean, stats.low, stats.high, complete)
        for ir, loss, stats, complete in _versus_pf(campaign)
    ]


def paired_section(campaign: Campaign) -> list[str]:
    rows = [
        [f"IR={ir}", loss_label(loss), stats.text()] for ir, loss, stats, _ in _versus_pf(campaign)
    ]
    return [
        "## Paired comparisons against PF (whole test split)",
        "",
        "Per seed, G-mean(method) − G-mean(PF) in points; mean, 95 % t interval, wins/ties/losses "
        "of the method. An interval below 0 means PF is better.",
        "",
        f"![method − PF per IR](figures/{FIGURE_NAME})",
        "",
        _table(["Setting", "Method", "method − PF (pp)"], rows),
        "",
    ]


@dataclass(frozen=True)
class Claim:
    source: str
    claim: str
    evidence: str
    verdict: str


def _beats(
    campaign: Campaign, ir: int, loss: str, other: str, column: str = "gmean"
) -> tuple[Stats, str]:
    setting = campaign.setting(ir)
    stats = campaign.versus(setting, loss, other, column)
    return stats, side_verdict(stats, campaign.complete(setting, loss, other))


def claims(campaign: Campaign) -> list[Claim]:
    found: list[Claim] = []
    du = "Du et al., Table IV"
    for ir in (100, 200):
        for loss in plan.SOURCE_LOSSES[1:]:
            stats, verdict = _beats(campaign, ir, "pf", loss)
            found.append(
                Claim(
                    du,
                    f"PF beats {loss_label(loss)} at IR={ir}",
                    f"PF − {loss_label(loss)}: {stats.text()}",
                    verdict,
                )
            )
    setting = campaign.setting(10)
    similar = [campaign.versus(setting, loss, "pf") for loss in plan.SOURCE_LOSSES[1:]]
    complete = campaign.complete(setting, *plan.SOURCE_LOSSES)
    widest = max((max(abs(s.low), abs(s.high)) for s in similar if s.n >= 2), default=math.nan)
    found.append(
        Claim(
            du,
            "All six losses are similar at IR=10",
            f"every method − PF interval within ±{SIMILAR_PP} pp? widest bound {_pp(widest)} pp",
            similar_verdict(similar, complete),
        )
    )
    vi = "Du et al., Table VI"
    for ir in (100, 200):
        minority = [
            _beats(campaign, ir, "pf", loss, "minority_acc") for loss in plan.SOURCE_LOSSES[1:]
        ]
        found.append(
            Claim(
                vi,
                f"PF's minority accuracy is the highest at IR={ir}",
                "; ".join(
                    f"vs {loss_label(loss)} {s.mean:+.2f}" if s.n else f"vs {loss_label(loss)} —"
                    for loss, (s, _) in zip(plan.SOURCE_LOSSES[1:], minority, strict=True)
                ),
                combine(v for _, v in minority),
            )
        )
        setting = campaign.setting(ir)
        majority = [
            campaign.versus(setting, loss, "pf", "majority_acc") for loss in plan.SOURCE_LOSSES[1:]
        ]
        found.append(
            Claim(
                vi,
                f"PF's majority accuracy is comparable (within ±{SIMILAR_PP} pp) at IR={ir}",
                "; ".join(
                    f"{loss_label(loss)} − PF {s.mean:+.2f}" if s.n else f"{loss_label(loss)} —"
                    for loss, s in zip(plan.SOURCE_LOSSES[1:], majority, strict=True)
                ),
                similar_verdict(majority, campaign.complete(setting, *plan.SOURCE_LOSSES)),
            )
        )
    for ir in (100, 200):
        stats, verdict = _beats(campaign, ir, "focal_alpha", "focal")
        found.append(
            Claim(
                "Du et al., Sec. IV-D, F",
                f"FL without class weights is worse than FL(α) at IR={ir}",
                f"FL(α) − FL: {stats.text()}",
                verdict,
            )
        )
        stats, verdict = _beats(campaign, ir, "wldam", "ldam")
        found.append(
            Claim(
                "Du et al., Sec. IV-D",
                f"WLDAM beats LDAM at IR={ir}",
                f"WLDAM − LDAM: {stats.text()}",
                verdict,
            )
        )
    found += _resampling_claims(campaign)
    found += _noise_claims(campaign)
    found += _binary_claims(campaign)
    for ir in SOURCE_IRS:
        for loss in plan.BASELINE_LOSSES:
            stats, verdict = _beats(campaign, ir, "pf", loss)
            found.append(
                Claim(
                    "modern baseline",
                    f"PF beats {loss_label(loss)} at IR={ir}",
                    f"PF − {loss_label(loss)}: {stats.text()}",
                    verdict,
                )
            )
    return found


def _resampling_claims(campaign: Campaign) -> list[Claim]:
    found = []
    plain = campaign.setting(100)
    for sampler in ("oversample", "class_balanced", "drs"):
        resampled = campaign.setting(100, sampler=sampler)
        frame = with_test_set(campaign.runs, "full_test")
        stats = paired(
            campaign.cell(plain, "pf", frame), campaign.cell(resampled, "ce", frame), "gmean"
        )
        complete = campaign.complete(plain, "pf") and campaign.complete(resampled, "ce")
        found.append(
            Claim(
                "Du et al., Sec. II",
                f"Resampling ({sampler}) with CE is worse than PF without resampling, IR=100",
                f"PF − CE+{sampler}: {stats.text()}",
                side_verdict(stats, complete),
            )
        )
    return found


def _binary_claims(campaign: Campaign) -> list[Claim]:
    """The second source: MFE and MSFE beat MSE (F1 of the minority class), Fashion-MNIST
    binary analogue at 10 % (ir=null) and 5 % (ir=19) minority."""
    found = []
    for ir, fraction in ((math.nan, "10 %"), (19.0, "5 %")):
        setting = Setting(ir, "32-true", float(plan.EPOCHS), protocol="binary")
        frame = with_test_set(campaign.runs, "full_test")
        for loss in ("mfe", "msfe"):
            stats = paired(
                campaign.cell(setting, loss, frame),
                campaign.cell(setting, "mse", frame),
                "f1_minority",
            )
            found.append(
                Claim(
                    "Wang et al. (analogue)",
                    f"{loss_label(loss)} beats MSE on a binary task, {fraction} minority "
                    "(minority F1, Fashion-MNIST Shirt vs rest)",
                    f"{loss_label(loss)} − MSE: {stats.text()}",
                    side_verdict(stats, campaign.complete(setting, loss, "mse")),
                )
            )
    return found


def _noise_claims(campaign: Campaign) -> list[Claim]:
    """PF's G-mean falls less than the other loss's under label noise (paired per seed)."""
    found = []
    frame = with_test_set(campaign.runs, "full_test")
    clean = campaign.setting(100)
    for noise in (0.2, 0.4):
        noisy = campaign.setting(100, label_noise=noise)
        for other in ("wce", "ce"):
            drops = {}
            for loss in ("pf", other):
                pairs = campaign.cell(noisy, loss, frame)[[*REPLICATE, "gmean"]].merge(
                    campaign.cell(clean, loss, frame)[[*REPLICATE, "gmean"]], on=REPLICATE
                )
                drops[loss] = pairs.assign(gmean=pairs["gmean_x"] - pairs["gmean_y"])
            stats = paired(drops["pf"], drops[other], "gmean")
            complete = all(campaign.complete(s, "pf", other) for s in (clean, noisy))
            found.append(
                Claim(
                    "Du et al., Sec. III-D",
                    f"PF loses less G-mean than {loss_label(other)} to label noise {noise}, IR=100",
                    f"(PF change) − ({loss_label(other)} change): {stats.text()}",
                    side_verdict(stats, complete),
                )
            )
    return found


README_BEGIN = "<!-- headline verdicts: begin (generated from docs/results.md) -->"
README_END = "<!-- headline verdicts: end -->"


def headline(campaign: Campaign) -> str:
    """The README's short table: PF against each other loss at IR=100 and 200, whole split."""
    irs = (100, 200)
    rows = []
    for loss in AGAINST_PF:
        line = [loss_label(loss)]
        for ir in irs:
            stats, verdict = _beats(campaign, ir, "pf", loss)
            if stats.n == 0:
                line.append("no paired run yet")
                continue
            interval = f" [{stats.low:+.1f}, {stats.high:+.1f}]" if stats.n >= 2 else ""
            line.append(f"{stats.mean:+.1f}{interval} (n={stats.n}): **{verdict}**")
        rows.append(line)
    headers = ["PF-loss against", *(f"IR={ir}: PF − other (pp)" for ir in irs)]
    jobs = {job_dirname(job) for stage in campaign.stages for job in stage.jobs()}
    done = len(jobs & campaign.finished)
    return (
        f"{README_BEGIN}\n"
        f"**In progress: {done} of {len(jobs)} planned runs finished.** Fashion-MNIST, step "
        "imbalance, whole test split, seeds paired across losses: mean G-mean difference with its "
        "95 % interval. *Supported* / *contradicted* need every planned seed of both cells and an "
        "interval that excludes 0. Every claim, the tables, the settings and what is missing: "
        "[docs/results.md](docs/results.md).\n\n"
        f"{_table(headers, rows)}\n{README_END}"
    )


def replace_headline(readme: str, block: str) -> str:
    """``readme`` with the text between the headline markers (markers included) replaced."""
    start, end = readme.find(README_BEGIN), readme.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"the README has no {README_BEGIN} ... {README_END} block")
    return readme[:start] + block + readme[end + len(README_END) :]


def results_page(runs: pd.DataFrame, last_runs: pd.DataFrame, command: str) -> str:
    """The whole of ``docs/results.md`` from the campaign's runs (``load_runs`` frames)."""
    campaign = Campaign(runs, last_runs)
    found = claims(campaign)
    counts = {v: sum(c.verdict == v for c in found) for v in (SUPPORTED, CONTRADICTED, NOT_DECIDED)}
    lines = [
        "# Results: which loss, on imbalanced Fashion-MNIST",
        "",
        f"Generated by `{command}` from the runs committed under `{plan.CAMPAIGN_DIR}`; do not "
        "edit by hand. `make campaign` runs or continues the campaign (`python -m imbloss.results "
        "status` counts what is left), and `make campaign-stop` stops it with every process it "
        "started.",
        "",
        f"**Verdicts so far: {counts[SUPPORTED]} supported, {counts[CONTRADICTED]} contradicted, "
        f"{counts[NOT_DECIDED]} not decided.**",
        "",
        "## The claims",
        "",
        "A verdict uses complete cells only (every planned seed finished) and n ≥ 3 paired seeds "
        "(training seed and subsampling seed shared, whole test split): *supported* when the "
        "95 % t interval of the paired difference lies on the claim's side of 0 (similarity: "
        f"inside ±{SIMILAR_PP} points), *contradicted* when it lies on the other side (outside), "
        "*not decided* otherwise.",
        "",
        _table(
            ["Source", "Claim", "Evidence (pp)", "Verdict"],
            [[c.source, c.claim, c.evidence, f"**{c.verdict}**"] for c in found],
        ),
        "",
        "## Settings, and where they differ from the paper",
        "",
        "- Fashion-MNIST, step imbalance (even classes keep 1/IR of train and test), the source's "
        "CNN, Adam lr 0.001, batch 500, weight decay 0 (`experiment=fmnist_step`).",
        f"- Schedule: **{plan.EPOCHS} epochs**, "
        f"{'confirmed' if plan.EPOCHS_CONFIRMED else 'until the schedule stage decides'} "
        "(the paper: 200; see *Schedule*). Model selection "
        "on validation G-mean every epoch; the validation split is 10 % of the imbalanced training "
        "split (at IR=100: 6 images per minority class); the paper does not state its split.",
        f"- Precision: **{plan.PRECISION or 'float32 until decided'}** (see *Precision*).",
        "- Layout: 2 jobs side by side, 1 CPU thread each (`campaign=fmnist`); a seed pins a run "
        "only together with its thread count.",
        "- Two test sets: the protocol's test split (the paper's; 10 images per minority class at "
        "IR=100) and the whole official test split (1,000 per class).",
        "- Untuned: `ldam` and `wldam` at C = 0.5 (not the grid's optimum); `wce` and "
        "`focal_alpha` at α = 1/N_j and γ = 2, the grid points the source reports as optimal.",
        "- `la` at τ = 1 is `bsm` (the same loss; bit-identical runs): only `bsm` runs.",
        f"- Compute: {_compute_hours(campaign):.1f} CPU-core hours of fitting in the "
        f"{len(campaign.runs)} finished runs (1 thread each).",
        "",
        "## Progress",
        "",
        _table(["Stage", "What", "Jobs finished"], _stage_rows(campaign)),
        "",
        f"{_time_left(campaign)} The estimate takes the fit time of a Fashion-MNIST CNN job at "
        f"{plan.EPOCHS} epochs for every job left (the {plan.SOURCE_EPOCHS}-epoch and MLP jobs "
        "differ), as measured with today's code ([performance.md](performance.md#the-cost-of-a-"
        "run)), not the mean of the runs so far, which slower code trained.",
        "",
    ]
    lines += precision_section(campaign)
    lines += schedule_section(campaign)
    lines += source_table(
        campaign,
        PAPER_TABLE_IV,
        [
            ("gmean", "G-mean", 0),
            (HARD_AUC, "AUC of predicted labels", 1),
            ("auc", "AUC of scores", 1),
        ],
        "## Table IV as measured (%, mean ± half-width of the 95 % t interval "
        "[n finished/planned])",
    )
    lines += auc_definition_note(
        campaign, [(HARD_AUC, "AUC of predicted labels"), ("auc", "AUC of scores")]
    )
    lines += source_table(
        campaign,
        PAPER_TABLE_VI,
        [("minority_acc", "Minority acc.", 0), ("majority_acc", "Majority acc.", 1)],
        "## Table VI as measured (%, mean ± half-width [n finished/planned])",
    )
    lines += paired_section(campaign)
    lines += ["## Jobs still missing", ""]
    for stage in campaign.stages:
        missing = _missing_cells(campaign, stage)
        if missing:
            lines.append(f"- `{stage.name}` ({len(missing)}): " + ", ".join(missing))
    return "\n".join(lines).rstrip() + "\n"


def write_results_page(
    root: Path,
    out: Path,
    load: Callable[[Path, str], pd.DataFrame],
    command: str,
    readme: Path | None = None,
) -> Path:
    """Write :func:`results_page` for the runs below ``root`` to ``out`` and its figure to
    ``figures/`` beside it; with ``readme``, also put :func:`headline` between that file's
    markers."""
    selected, last = load(root, "selected"), load(root, "last")
    page = results_page(selected, last, command)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page)
    campaign = Campaign(selected, last)
    methods = [loss_label(loss) for loss in AGAINST_PF]
    figure_path = out.parent / "figures" / FIGURE_NAME
    write_against_pf_figure(against_pf(campaign), methods, SIMILAR_PP, figure_path)
    if readme is not None:
        block = headline(campaign)
        readme.write_text(replace_headline(readme.read_text(), block))
    return out
