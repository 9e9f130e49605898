"""95 % confidence intervals: over the test samples of one run, and over the seeds of a cell.

- :class:`StratifiedBootstrap` — the stratified bootstrap of one evaluation. Each of ``resamples``
  replicates draws, within every class j, ``n_j`` of its ``n_j`` test samples with replacement
  (so every replicate keeps the test split's class counts), and recomputes G-mean and AUC on the
  replicate; the interval is the 2.5th and 97.5th percentile of the replicates (percentile
  bootstrap). It measures how much the figure moves with the test sample, not with training.
  A replicate is a vector of multiplicities ``w_i`` (how often sample i was drawn), so:

  - recall_j = Σ_{i: y_i=j} w_i · [ŷ_i = j] / n_j, G-mean = (Π_j recall_j)^(1/C) (0 if one is 0);
  - one-vs-rest AUC of class j, weighted Mann-Whitney with ties counted one half:
    AUC_j = Σ_{i: y_i=j} w_i · (Σ_{k: y_k≠j, s_k<s_i} w_k + ½ Σ_{k: y_k≠j, s_k=s_i} w_k)
    / (n_j · (N − n_j)), ``s = probs[:, j]``; AUC = AUC_1 for two classes (the binary ROC-AUC of
    label 1), the mean of AUC_j otherwise (macro one-vs-rest), as :mod:`imbloss.metrics`.

  All replicates are computed at once, from the multiplicities held sample-major, [N, B] (a
  sample's B multiplicities contiguous, so every pass adds whole rows). They are integers held
  as float32, whose sums are exact below 2^24 in any order: one pass per class sums the rows
  into bins of the positives' distinct scores (negatives below, negatives tied, positives), and
  the AUC takes cumulative sums over those bins, then int64 products and totals.
  :class:`StratifiedBootstrap` draws them once per test set, on the CPU generator, and holds
  them on its device; the integer counts (hits per class, twice U, pair counts) come back to the
  CPU for the float64 ratios, so any device gives the same intervals bit for bit.
- :func:`t_interval` — mean ± t_{0.975, n−1} · s / √n over n values (Student t, sample std s).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from scipy import stats

BOOTSTRAP_RESAMPLES = 1000
CONFIDENCE = 0.95


@contextmanager
def _one_thread() -> Iterator[None]:
    """The bootstrap's row sums are memory-bound and many small operations: one thread is faster
    than two on a shared 2-core machine (0.75 s against 2.15 s of CPU per bench_intervals run,
    measured at load 3.6-3.9)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def replicate_weights(class_counts: Sequence[int], resamples: int, seed: int) -> torch.Tensor:
    """Multiplicities [N, B] (sample-major, integers held as float32) of a stratified bootstrap of
    samples sorted by class.

    Rows are the samples, class 0's first; each class is resampled alone (its ``n_j`` draws with
    replacement among its own ``n_j`` rows, so every column sums to ``n_j`` over them). The draws
    come from a CPU generator seeded by ``seed``, so a seed gives the same replicates on any
    device. Every sum of multiplicities is an integer at most N < 2^24, which float32 holds
    exactly, in any order of addition.
    """
    if sum(class_counts) >= 2**24:
        raise ValueError(f"float32 counts are exact below 2^24 samples, got {sum(class_counts)}")
    generator = torch.Generator().manual_seed(int(seed))
    blocks = []
    for n in class_counts:
        draws = torch.randint(n, (resamples, n), generator=generator)
        draws *= resamples  # draw d of replicate b counts in cell d * B + b
        draws += torch.arange(resamples)[:, None]
        blocks.append(torch.bincount(draws.flatten(), minlength=n * resamples).view(n, resamples))
    return torch.cat(blocks).float()


def _row_sums(weights: torch.Tensor, rows: torch.Tensor, count: int) -> torch.Tensor:
    """[count, B]: row r is the sum of the weights' rows i with ``rows[i] = r`` (one pass)."""
    sums = torch.zeros(count, weights.shape[1], dtype=weights.dtype, device=weights.device)
    return sums.index_add_(0, rows, weights)


def _blockwise_cumsum_(matrix: torch.Tensor, block: int) -> torch.Tensor:
    """Cumulative sums along dim 0 in two levels, ``matrix.shape[0]`` a multiple of ``block``.

    In place, row r becomes the sum of the rows from its block's first through r, row k += row
    k-1 for every block at once (whole contiguous rows: torch's CPU cumsum over dim 0 walks each
    column with a stride of a row, several times slower). Returns the block offsets [M, B]: block
    m's is the sum of all rows of blocks 0..m-1. Row r's cumulative sum is then
    ``matrix[r] + offsets[r // block]`` (:func:`_prefix_rows`).
    """
    blocks = matrix.view(-1, block, matrix.shape[1])
    for k in range(1, block):
        blocks[:, k].add_(blocks[:, k - 1])
    totals = blocks[:, -1]
    return torch.cumsum(totals, 0, dtype=matrix.dtype) - totals


def _prefix_rows(
    matrix: torch.Tensor, offsets: torch.Tensor, rows: torch.Tensor, block: int
) -> torch.Tensor:
    """Cumulative sums through ``rows`` of a matrix :func:`_blockwise_cumsum_` has processed."""
    return matrix.index_select(0, rows) + offsets.index_select(0, rows // block)


def _class_hits(
    weights: torch.Tensor, target: torch.Tensor, correct: torch.Tensor, num_classes: int
) -> torch.Tensor:
    """Weighted correct count of every class and replicate [C, B] (integers as float32):
    hits_jb = Σ_{i: y_i=j} w_ib · [ŷ_i = j]; the wrong predictions go to a spare row."""
    rows = torch.where(correct, target, num_classes)
    return _row_sums(weights, rows, num_classes + 1)[:num_classes]


def _gmeans(weights: torch.Tensor, target: torch.Tensor, correct: torch.Tensor) -> torch.Tensor:
    """G-mean of every replicate [B] = (Π_j hits_jb / n_j)^(1/C), 0 if a recall is 0; the
    integer hit counts come back to the CPU for the float64 ratios."""
    counts = torch.bincount(target)
    hits = _class_hits(weights, target, correct, len(counts))
    recalls = (hits.cpu().double() / counts.cpu().double()[:, None]).T.contiguous()
    logs = torch.log(recalls.clamp_min(1e-300))
    return torch.where((recalls > 0).all(1), torch.exp(logs.mean(1)), 0.0)


def _twice_mann_whitney(
    weights: torch.Tensor, scores: torch.Tensor, positive: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Twice the weighted Mann-Whitney U of ``positive`` against the rest and the pair count
    n_pos · n_neg, for every replicate (int64 [B] each, exact), on the weights' device.

    With v_0 < ... < v_{G-1} the distinct positive scores, one pass sums the weights into rows:
    2g the negatives strictly between v_{g-1} and v_g, 2g + 1 the negatives at v_g, 2G those
    above v_{G-1}, then (after padding) one row per positive group g. With C_r the negatives'
    cumulative sum through row r, 2U = Σ_g pos_g · (C_2g + C_{2g+1}): twice the negatives below
    plus the tied ones.
    """
    scores = scores.contiguous()
    values = torch.unique(scores[positive])
    groups = len(values)
    below = torch.searchsorted(values, scores)  # g: positive values strictly below the score
    tied = values[below.clamp_max(groups - 1)] == scores
    block = math.isqrt(2 * groups + 1) + 1
    negative_rows = -(-(2 * groups + 1) // block) * block  # padded to whole blocks
    rows = torch.where(positive, negative_rows + below, 2 * below + tied)
    sums = _row_sums(weights, rows, negative_rows + groups)
    negatives, pos_weights = sums[:negative_rows], sums[negative_rows:]
    offsets = _blockwise_cumsum_(negatives, block)
    bounds = torch.arange(2 * groups + 1, device=scores.device)
    through = _prefix_rows(negatives, offsets, bounds, block).long()
    twice_credit = through[0:-1:2] + through[1::2]
    twice_credit *= pos_weights.long()
    pairs = pos_weights.sum(0).long() * through[-1]
    return twice_credit.sum(0), pairs


def _one_vs_rest_aucs(
    weights: torch.Tensor, scores: torch.Tensor, positive: torch.Tensor
) -> torch.Tensor:
    """Weighted Mann-Whitney AUC of ``positive`` against the rest, for every replicate [B]:
    U / (n_pos · n_neg) from the exact integer counts, on the CPU (float64)."""
    twice_u, pairs = _twice_mann_whitney(weights, scores, positive)
    return twice_u.cpu().double() / 2 / pairs.cpu().double()


class StratifiedBootstrap:
    """The bootstrap replicates of one test set, reused for every evaluation on it (the selected
    and the last weights are judged on the same resamples). Seeded by ``seed``.

    ``target`` [N] int64 must hold every class at least once. The replicates are drawn on the
    CPU and held on ``device``, where :meth:`ci95` computes; any device gives the same intervals.
    """

    def __init__(
        self,
        target: torch.Tensor,
        seed: int = 0,
        resamples: int = BOOTSTRAP_RESAMPLES,
        device: torch.device | str | None = None,
    ) -> None:
        target = target.detach().cpu().long()
        counts = torch.bincount(target)
        if bool((counts == 0).any()):
            raise ValueError(f"every class needs a test sample, got counts {counts.tolist()}")
        self.device = torch.device("cpu" if device is None else device)
        order = torch.argsort(target, stable=True)
        self.order = order.to(self.device)
        self.target = target[order].to(self.device)
        with _one_thread():
            self.weights = replicate_weights(counts.tolist(), resamples, seed).to(self.device)

    def ci95(self, probs: torch.Tensor) -> dict[str, list[float]]:
        """``{"gmean_ci95": [low, high], "auc_ci95": [low, high]}`` of ``probs`` [N, C]."""
        probs = probs.detach().to(self.device, torch.float32)[self.order]
        classes = [1] if probs.shape[1] == 2 else range(probs.shape[1])
        with _one_thread():
            gmeans = _gmeans(self.weights, self.target, probs.argmax(1) == self.target)
            aucs = torch.stack(
                [_one_vs_rest_aucs(self.weights, probs[:, j], self.target == j) for j in classes],
                dim=1,
            ).mean(1)
        tail = 100 * (1 - CONFIDENCE) / 2
        return {
            name: [float(v) for v in np.percentile(values.numpy(), [tail, 100 - tail])]
            for name, values in (("gmean_ci95", gmeans), ("auc_ci95", aucs))
        }


def t_interval(values: Sequence[float]) -> tuple[float, float]:
    """``(low, high)`` of the 95 % Student-t interval of the mean; NaNs below two values."""
    n = len(values)
    if n < 2:
        return math.nan, math.nan
    array = np.asarray(values, dtype=float)
    mean = float(array.mean())
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * float(array.std(ddof=1)) / math.sqrt(n)
    return mean - half, mean + half
