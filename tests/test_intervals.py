"""Confidence intervals: the stratified bootstrap of one run, the Student-t interval over seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from imbloss.intervals import (
    StratifiedBootstrap,
    _gmeans,
    _one_vs_rest_aucs,
    replicate_weights,
    t_interval,
)
from imbloss.metrics import classification_summary


def _predictions(counts: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    target = torch.cat([torch.full((n,), j) for j, n in enumerate(counts)])
    logits = torch.randn(len(target), len(counts), generator=generator)
    logits += 1.5 * torch.nn.functional.one_hot(target, len(counts))
    probs = (torch.softmax(logits, 1) * 50).round() / 50  # coarse scores: many ties
    return target, probs / probs.sum(1, keepdim=True)


def test_weighted_auc_with_ties_by_hand() -> None:
    scores = torch.tensor([0.1, 0.4, 0.35, 0.8, 0.4, 0.1, 0.9])
    positive = torch.tensor([0, 1, 0, 1, 0, 1, 1]).bool()
    weights = torch.tensor([[2.0, 0, 1, 1, 1, 3, 0]]).T  # [N, B]: one replicate
    # positives (weight): 0.4 (0), 0.8 (1), 0.1 (3), 0.9 (0); negatives: 0.1 (2), 0.35 (1),
    # 0.4 (1). 0.8 beats all 4 negative weights; 0.1 ties with the weight-2 negative (half).
    expected = (1 * 4 + 3 * 0.5 * 2) / (4 * 4)
    assert float(_one_vs_rest_aucs(weights, scores, positive)[0]) == pytest.approx(expected)
    assert expected == pytest.approx(
        roc_auc_score(positive.numpy(), scores.numpy(), sample_weight=weights[:, 0].numpy())
    )


def test_unit_weights_reproduce_the_point_figures() -> None:
    target, probs = _predictions([7, 40, 12, 60])
    ones = torch.ones(len(target), 1)
    summary = classification_summary(probs, target)
    gmean = _gmeans(ones, target, probs.argmax(1) == target)
    assert float(gmean[0]) == pytest.approx(summary["gmean"], rel=1e-6)
    aucs = [float(_one_vs_rest_aucs(ones, probs[:, j], target == j)[0]) for j in range(4)]
    assert np.mean(aucs) == pytest.approx(
        roc_auc_score(target.numpy(), probs.numpy(), multi_class="ovr"), abs=1e-6
    )


def test_replicates_keep_every_class_count_and_are_seeded() -> None:
    weights = replicate_weights([3, 5, 2], resamples=200, seed=4)
    assert weights.shape == (10, 200)
    sums = torch.stack([weights[:3].sum(0), weights[3:8].sum(0), weights[8:10].sum(0)])
    assert bool((sums == torch.tensor([[3], [5], [2]])).all())
    assert torch.equal(weights, replicate_weights([3, 5, 2], resamples=200, seed=4))
    assert not torch.equal(weights, replicate_weights([3, 5, 2], resamples=200, seed=5))


def test_replicates_refuse_test_sets_float32_cannot_count_exactly() -> None:
    with pytest.raises(ValueError, match="2\\^24"):
        replicate_weights([2**23, 2**23], resamples=1, seed=0)


def _reference_gmean(w: np.ndarray, target: np.ndarray, predicted: np.ndarray) -> float:
    counts = np.bincount(target)
    recalls = [sum(w[i] for i in range(len(w)) if target[i] == predicted[i] == j) / n
               for j, n in enumerate(counts)]  # fmt: skip
    return 0.0 if min(recalls) == 0 else float(np.exp(np.mean(np.log(recalls))))


def _reference_auc(w: np.ndarray, scores: np.ndarray, positive: np.ndarray) -> float:
    pos, neg = np.flatnonzero(positive), np.flatnonzero(~positive)
    u = sum(w[i] * w[k] * (1.0 if scores[k] < scores[i] else 0.5 if scores[k] == scores[i] else 0)
            for i in pos for k in neg)  # fmt: skip
    return u / (w[pos].sum() * w[neg].sum())


@pytest.mark.parametrize("counts", [[5, 9, 3, 6], [11, 4]])
def test_replicates_match_a_brute_force_reference(counts: list[int]) -> None:
    target, probs = _predictions(counts, seed=3)  # coarse scores: ties within and across classes
    weights = replicate_weights(counts, resamples=40, seed=1)
    predicted = probs.argmax(1)
    gmeans = _gmeans(weights, target, predicted == target)
    classes = [1] if len(counts) == 2 else range(len(counts))
    aucs = torch.stack([_one_vs_rest_aucs(weights, probs[:, j], target == j) for j in classes])
    for b, w in enumerate(weights.T.numpy()):
        assert float(gmeans[b]) == pytest.approx(
            _reference_gmean(w, target.numpy(), predicted.numpy()), rel=1e-12
        )
        for row, j in enumerate(classes):
            expected = _reference_auc(w, probs[:, j].numpy(), (target == j).numpy())
            assert float(aucs[row, b]) == expected  # U and the pair count are integers: exact


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_gives_the_cpu_intervals() -> None:
    for counts in ([20, 300, 45], [300, 30]):
        target, probs = _predictions(counts, seed=4)
        on_cpu = StratifiedBootstrap(target, seed=2).ci95(probs)
        on_cuda = StratifiedBootstrap(target, seed=2, device="cuda").ci95(probs.cuda())
        assert on_cuda == on_cpu


def test_interval_contains_the_point_and_narrows_as_the_test_set_grows() -> None:
    widths = []
    for per_class in (20, 200, 2000):
        target, probs = _predictions([per_class] * 4, seed=1)
        summary = classification_summary(probs, target)
        ci = StratifiedBootstrap(target, seed=0).ci95(probs)
        for name in ("gmean", "auc"):
            low, high = ci[f"{name}_ci95"]
            assert low <= summary[name] <= high
        widths.append(ci["gmean_ci95"][1] - ci["gmean_ci95"][0])
    assert widths[0] > 2 * widths[1] > 4 * widths[2]  # about 1/sqrt(n): sqrt(10) per step


def test_binary_auc_interval_uses_label_one() -> None:
    target, probs = _predictions([300, 30], seed=2)
    ci = StratifiedBootstrap(target, seed=0).ci95(probs)
    point = roc_auc_score(target.numpy(), probs[:, 1].numpy())
    assert ci["auc_ci95"][0] < point < ci["auc_ci95"][1]


def test_a_class_without_test_sample_is_refused() -> None:
    with pytest.raises(ValueError, match=r"\[2, 0, 1\]"):
        StratifiedBootstrap(torch.tensor([0, 0, 2]))


def test_t_interval_by_hand() -> None:
    low, high = t_interval([0.80, 0.82, 0.84])
    half = 4.302652729749464 * 0.02 / math.sqrt(3)  # t_{0.975, 2} * s / sqrt(n)
    assert (low, high) == (pytest.approx(0.82 - half), pytest.approx(0.82 + half))
    assert all(math.isnan(v) for v in t_interval([0.8]))
