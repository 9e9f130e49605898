"""The outlier example of Du et al. 2021 (Sec. III-D, Fig. 1), computed with the registry's losses.

One mini-batch of four samples and two classes: three majority samples (class 0) with true-class
probabilities ``x``, 0.8 and 0.9, and one minority sample (class 1) at 0.2. The outlier's
probability ``x`` goes from 0.001 to 0.9. Each sample's logits are ``(log p, log(1 - p))`` in the
order (true class, other class), so that its softmax true-class probability is exactly ``p``; the
losses are built by :func:`imbloss.losses.build_loss` with the batch's class counts ``(3, 1)`` (the
source's ``alpha_j = 1/N_j``) and their default hyperparameters. LDAM reads logits, not
probabilities: its curve belongs to this choice of logits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from imbloss.losses import build_loss
from imbloss.report.labels import loss_label

LOSSES = ("ce", "wce", "focal", "focal_alpha", "ldam", "pf", "pfh")
MAJORITY_PROBS = (0.8, 0.9)
MINORITY_PROB = 0.2
CLASS_COUNTS = (3, 1)
OUTLIER_PROBS = (0.001, *(round(0.01 * k, 2) for k in range(1, 91)))
CSV_FILE = "outliers.csv"
PNG_FILE = "outliers.png"


def example_batch(
    outlier: float, minority: float = MINORITY_PROB
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits [4, 2] and targets [4] of the example: majority ``(outlier, 0.8, 0.9)``, minority."""
    probs = torch.tensor([outlier, *MAJORITY_PROBS, minority], dtype=torch.float64)
    target = torch.tensor([0, 0, 0, 1])
    true_logit, other_logit = probs.log(), torch.log1p(-probs)
    logits = torch.where(
        target[:, None] == torch.arange(2), true_logit[:, None], other_logit[:, None]
    )
    return logits, target


def example_losses(
    outlier: float, minority: float = MINORITY_PROB, losses: Sequence[str] = LOSSES
) -> dict[str, float]:
    """Each loss's value on the example batch."""
    return _evaluate(_build(losses), [outlier], minority)[0]


def outlier_curves(outliers: Sequence[float] = OUTLIER_PROBS) -> pd.DataFrame:
    """One row per outlier probability: ``outlier_prob`` and one column per loss."""
    values = _evaluate(_build(LOSSES), outliers, MINORITY_PROB)
    rows = [{"outlier_prob": x, **row} for x, row in zip(outliers, values, strict=True)]
    return pd.DataFrame(rows, columns=["outlier_prob", *LOSSES])


def _build(losses: Sequence[str]) -> dict[str, torch.nn.Module]:
    return {name: build_loss(name, CLASS_COUNTS) for name in losses}


@torch.no_grad()
def _evaluate(
    modules: dict[str, torch.nn.Module], outliers: Sequence[float], minority: float
) -> list[dict[str, float]]:
    rows = []
    for outlier in outliers:
        logits, target = example_batch(outlier, minority)
        rows.append({name: float(fn(logits.float(), target)) for name, fn in modules.items()})
    return rows


def plot_curves(curves: pd.DataFrame, path: Path) -> None:
    """Fig. 1 of the source: each loss against the outlier's probability; beside it, each loss
    divided by its value at the smallest outlier probability (how much of it the outlier holds)."""
    figure = Figure(figsize=(11, 4.2))
    absolute, relative = figure.subplots(1, 2)
    x = curves["outlier_prob"]
    for name in LOSSES:
        values = curves[name].to_numpy()
        absolute.plot(x, values, label=loss_label(name))
        relative.plot(x, values / values[0], label=loss_label(name))
    absolute.set(xlabel="outlier probability", ylabel="loss", yscale="log")
    relative.set(xlabel="outlier probability", ylabel="loss / loss at the first point")
    majority = ", ".join(f"{p:g}" for p in MAJORITY_PROBS)
    figure.suptitle(f"Majority samples (outlier, {majority}), minority sample {MINORITY_PROB:g}")
    relative.legend(fontsize="small")
    for axes in (absolute, relative):
        axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def drop(curves: pd.DataFrame, name: str) -> float:
    """``1 - loss(x = 0.9) / loss(x = 0.001)``: the share of the loss the outlier accounts for."""
    values = curves[name].to_numpy()
    return 1.0 - values[-1] / values[0]


def write_outlier_analysis(out_dir: Path) -> list[Path]:
    """Write ``outliers.csv`` and ``outliers.png`` into ``out_dir``; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    curves = outlier_curves()
    csv_path, png_path = out_dir / CSV_FILE, out_dir / PNG_FILE
    curves.to_csv(csv_path, index=False, float_format="%.6g")
    plot_curves(curves, png_path)
    return [csv_path, png_path]


def geometric_and_arithmetic_means(outlier: float = 0.001) -> tuple[float, float]:
    """The majority class's geometric and arithmetic mean probability (0.09 and 0.57 at 0.001)."""
    probs = np.array([outlier, *MAJORITY_PROBS])
    return float(math.exp(np.log(probs).mean())), float(probs.mean())
