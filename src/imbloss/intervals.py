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

  All replicates are computed at once, from the multiplicities held sample-major, [N + 1, B]
  (a sample's B multiplicities contiguous, so every gather copies whole rows and every sum adds
  whole rows): one sort per class, then integer cumulative sums down the rows, exact.
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
    """The bootstrap's gathers and row sums are memory-bound and many: one thread is faster than
    two on a shared 2-core machine (0.7 s against 11 s of CPU for a run of bench_intervals,
    measured under load)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def replicate_weights(class_counts: Sequence[int], resamples: int, seed: int) -> torch.Tensor:
    """Multiplicities [N + 1, B] (int32, sample-major) of a stratified bootstrap of samples sorted
    by class.

    Rows 0..N-1 are the samples, class 0's first; each class is resampled alone (its ``n_j``
    draws with replacement among its own ``n_j`` rows, so every column sums to ``n_j`` over
    them). Row N is 0: the neutral row the AUC's cumulative sums start from. The draws come from
    a CPU generator seeded by ``seed``, so a seed gives the same replicates on any device.
    """
    generator = torch.Generator().manual_seed(int(seed))
    blocks = []
    for n in class_counts:
        draws = torch.randint(n, (resamples, n), generator=generator)
        cells = draws * resamples + torch.arange(resamples)[:, None]  # (sample, replicate) cell
        blocks.append(torch.bincount(cells.flatten(), minlength=n * resamples).view(n, resamples))
    blocks.append(torch.zeros(1, resamples, dtype=torch.int64))
    return torch.cat(blocks).int()


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


def _class_hits(weights: torch.Tensor, target: torch.Tensor, correct: torch.Tensor) -> torch.Tensor:
    """Weighted correct count of every replicate and class [B, C] (int32, at most n_j):
    hits_bj = Σ_{i: y_i=j} w_ib · [ŷ_i = j]; ``target`` sorted by class."""
    counts = torch.bincount(target).tolist()
    masked = weights[: len(target)] * correct[:, None]
    return torch.stack([rows.sum(0, dtype=torch.int32) for rows in masked.split(counts)], dim=1)


def _gmeans_of_hits(hits: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """G-mean [B] = (Π_j hits_bj / n_j)^(1/C), 0 if a recall is 0; on the CPU (float64)."""
    recalls = hits.cpu().double() / counts.cpu().double()
    logs = torch.log(recalls.clamp_min(1e-300))
    return torch.where((recalls > 0).all(1), torch.exp(logs.mean(1)), 0.0)


def _gmeans(weights: torch.Tensor, target: torch.Tensor, correct: torch.Tensor) -> torch.Tensor:
    """G-mean of every replicate [B], on the CPU; ``target`` sorted by class."""
    return _gmeans_of_hits(_class_hits(weights, target, correct), torch.bincount(target))


def _twice_mann_whitney(
    weights: torch.Tensor, scores: torch.Tensor, positive: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Twice the weighted Mann-Whitney U of ``positive`` against the rest and the pair count
    n_pos · n_neg, for every replicate (int64 [B] each, exact), on the weights' device.

    ``weights`` as :func:`replicate_weights` returns them. The rows sorted by score, positives
    zeroed, cumulate into negatives-through-position; a positive at sorted position p in the tie
    group [s, e] is credited (negatives through s-1) + (negatives through e): twice its
    negatives below plus its tied negatives.
    """
    n, device = len(scores), scores.device
    order = torch.argsort(scores, stable=True)
    sorted_scores = scores[order]
    positions = torch.arange(n, device=device)
    new_group = torch.ones(n, dtype=torch.bool, device=device)
    new_group[1:] = sorted_scores[1:] != sorted_scores[:-1]
    group_start = torch.cummax(torch.where(new_group, positions, 0), 0).values
    group_end = torch.where(new_group.roll(-1), positions, n).flip(0).cummin(0).values.flip(0)
    # row p + 1: sorted position p; row 0 and the padding rows: the neutral zero row
    block = math.isqrt(n) + 1
    padding = torch.full((-(n + 1) % block,), n, device=device)
    neutral = torch.tensor([n], device=device)
    negatives = weights.index_select(0, torch.cat([neutral, order, padding]))
    pos = torch.nonzero(positive).flatten()
    pos_weights = weights.index_select(0, pos)
    rank = torch.empty_like(order)
    rank[order] = positions
    pos_at = rank[pos]
    negatives.index_fill_(0, pos_at + 1, 0)
    offsets = _blockwise_cumsum_(negatives, block)  # through row p + 1: negatives at <= p
    bounds = torch.cat([group_start[pos_at], group_end[pos_at] + 1, neutral])
    through = _prefix_rows(negatives, offsets, bounds, block)
    twice_credit = through[: len(pos)] + through[len(pos) : -1]
    twice_credit *= pos_weights
    pairs = pos_weights.sum(0, dtype=torch.int64) * through[-1]
    return twice_credit.sum(0, dtype=torch.int64), pairs


def _aucs_of_counts(twice_u: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """AUC = U / (n_pos · n_neg), on the CPU (float64)."""
    return twice_u.cpu().double() / 2 / pairs.cpu().double()


def _one_vs_rest_aucs(
    weights: torch.Tensor, scores: torch.Tensor, positive: torch.Tensor
) -> torch.Tensor:
    """Weighted Mann-Whitney AUC of ``positive`` against the rest, for every replicate [B], on
    the CPU. Integer cumulative sums: exact."""
    return _aucs_of_counts(*_twice_mann_whitney(weights, scores, positive))


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
        self.counts = counts
        self.order = order.to(self.device)
        self.target = target[order].to(self.device)
        with _one_thread():
            self.weights = replicate_weights(counts.tolist(), resamples, seed).to(self.device)

    def ci95(self, probs: torch.Tensor) -> dict[str, list[float]]:
        """``{"gmean_ci95": [low, high], "auc_ci95": [low, high]}`` of ``probs`` [N, C]."""
        probs = probs.detach().to(self.device, torch.float32)[self.order]
        classes = [1] if probs.shape[1] == 2 else range(probs.shape[1])
        with _one_thread():
            hits = _class_hits(self.weights, self.target, probs.argmax(1) == self.target)
            per_class = [
                _twice_mann_whitney(self.weights, probs[:, j], self.target == j) for j in classes
            ]
        twice_u, pairs = (torch.stack(column, dim=1) for column in zip(*per_class, strict=True))
        gmeans = _gmeans_of_hits(hits, self.counts)
        aucs = _aucs_of_counts(twice_u, pairs).mean(1)
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
