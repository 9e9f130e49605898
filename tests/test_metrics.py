"""The evaluation figures against scikit-learn / imbalanced-learn and hand-computed values."""

import numpy as np
import pytest
import torch
from imblearn.metrics import geometric_mean_score
from sklearn.metrics import accuracy_score, f1_score, recall_score, roc_auc_score

from imbloss.errors import ConfigError
from imbloss.metrics import (
    ShotThresholds,
    classification_summary,
    geometric_mean,
    hard_prediction_auc,
    shot_accuracies,
    top1_error,
)


def _random_probs(n: int, c: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    target = torch.arange(n) % c  # every class present
    logits = torch.randn(n, c, generator=gen) + 1.5 * torch.nn.functional.one_hot(target, c)
    return torch.softmax(logits, dim=1), target


def test_geometric_mean_by_hand() -> None:
    assert geometric_mean(torch.tensor([0.5, 0.8, 0.2])) == pytest.approx(
        (0.5 * 0.8 * 0.2) ** (1 / 3)
    )
    assert geometric_mean(torch.tensor([0.9, 0.0, 1.0])) == 0.0


@pytest.mark.parametrize(("n", "c"), [(200, 2), (300, 10), (97, 5)])
def test_summary_matches_sklearn_and_imblearn(n: int, c: int) -> None:
    probs, target = _random_probs(n, c, seed=n)
    summary = classification_summary(probs, target, minority_classes=[0])
    y, p = target.numpy(), probs.numpy().astype(np.float64)
    pred = p.argmax(axis=1)
    recalls = recall_score(y, pred, average=None)
    assert summary["per_class_recall"] == pytest.approx(recalls.tolist(), abs=1e-6)
    assert summary["gmean"] == pytest.approx(geometric_mean_score(y, pred), abs=1e-6)
    auc = roc_auc_score(y, p[:, 1]) if c == 2 else roc_auc_score(y, p, multi_class="ovr")
    assert summary["auc"] == pytest.approx(auc, abs=1e-5)
    assert summary["f1"] == pytest.approx(f1_score(y, pred, average="macro"), abs=1e-6)
    assert summary["acc"] == pytest.approx(accuracy_score(y, pred), abs=1e-6)
    assert summary["minority_acc"] == pytest.approx(recalls[0], abs=1e-6)
    assert summary["majority_acc"] == pytest.approx(recalls[1:].mean(), abs=1e-6)
    if c == 2:
        assert summary["f1_minority"] == pytest.approx(f1_score(y, pred, pos_label=1), abs=1e-6)
    else:
        assert "f1_minority" not in summary


def test_summary_by_hand_with_a_class_never_predicted() -> None:
    # 3 classes; class 2 is never predicted -> recall 0 -> G-mean 0.
    probs = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.6, 0.3, 0.1], [0.1, 0.7, 0.2]])
    target = torch.tensor([0, 1, 2, 1])
    summary = classification_summary(probs, target, minority_classes=[2])
    assert summary["per_class_recall"] == pytest.approx([1.0, 1.0, 0.0])
    assert summary["gmean"] == 0.0
    assert summary["minority_acc"] == 0.0
    assert summary["majority_acc"] == 1.0
    assert summary["acc"] == pytest.approx(0.75)


def test_no_minority_classes_gives_none() -> None:
    probs, target = _random_probs(50, 3, seed=1)
    summary = classification_summary(probs, target, minority_classes=[])
    assert summary["minority_acc"] is None
    assert summary["majority_acc"] == pytest.approx(np.mean(summary["per_class_recall"]))


def test_hard_prediction_auc_by_hand() -> None:
    # predicted 0, 1, 1, 0 for targets 0, 0, 1, 2: (TPR + TNR) / 2 per class is
    # class 0: (1/2 + 1/2) / 2, class 1: (1 + 2/3) / 2, class 2: (0 + 1) / 2.
    probs = torch.tensor([[0.8, 0.1, 0.1], [0.3, 0.6, 0.1], [0.2, 0.7, 0.1], [0.5, 0.2, 0.3]])
    target = torch.tensor([0, 0, 1, 2])
    assert hard_prediction_auc(probs, target) == pytest.approx((0.5 + 5 / 6 + 0.5) / 3)
    # two classes: the AUC of label 1 alone, (2/3 + 1) / 2 here
    binary = torch.tensor([[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.8, 0.2]])
    assert hard_prediction_auc(binary, torch.tensor([0, 1, 1, 1])) == pytest.approx(5 / 6)


@pytest.mark.parametrize(("n", "c"), [(200, 2), (300, 10)])
def test_hard_prediction_auc_is_sklearns_auc_of_one_hot_predictions(n: int, c: int) -> None:
    probs, target = _random_probs(n, c, seed=n + 7)
    y, pred = target.numpy(), probs.numpy().argmax(axis=1)
    per_class = [roc_auc_score(y == j, pred == j) for j in range(c)]
    expected = per_class[1] if c == 2 else np.mean(per_class)
    assert hard_prediction_auc(probs, target) == pytest.approx(expected, abs=1e-6)
    # a score AUC rewards ranking, this one only the argmax: they differ on these data
    assert (
        abs(hard_prediction_auc(probs, target) - classification_summary(probs, target)["auc"])
        > 0.01
    )


@pytest.mark.parametrize(
    ("counts", "thresholds", "groups"),
    [
        # CIFAR-10-LT at IR=100 (exp profile): no class below 20 training images
        (
            [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50],
            ShotThresholds(),
            {"many": [0, 1, 2, 3, 4, 5, 6, 7], "medium": [8, 9], "few": []},
        ),
        ([101, 100, 20, 19], ShotThresholds(), {"many": [0], "medium": [1, 2], "few": [3]}),
        (
            [101, 100, 20, 19],
            ShotThresholds(few=0, many=200),
            {"many": [], "medium": [0, 1, 2, 3], "few": []},
        ),
    ],
)
def test_shot_groups_follow_the_thresholds(counts, thresholds, groups) -> None:
    assert thresholds.groups(counts) == groups


def test_shot_accuracies_are_group_means_and_null_for_an_empty_group() -> None:
    recall = [0.9, 0.8, 0.5, 0.1]
    figures = shot_accuracies(recall, {"many": [0, 1], "medium": [2], "few": []})
    assert figures == {
        "many_shot_acc": pytest.approx(0.85),
        "medium_shot_acc": 0.5,
        "few_shot_acc": None,
    }


def test_top1_error_only_where_the_test_set_is_balanced() -> None:
    assert top1_error(0.75, [100] * 10) == pytest.approx(0.25)
    assert top1_error(0.75, [100, 10]) is None
    assert top1_error(0.75, [0, 0]) is None


@pytest.mark.parametrize(
    "shots", [{"few": 30, "many": 20}, {"few": -1, "many": 20}, {"few": 2.5, "many": 20}]
)
def test_bad_shot_thresholds_are_config_errors(shots) -> None:
    with pytest.raises(ConfigError, match=r"accepted: integers 0 <= few <= many"):
        ShotThresholds.from_config(shots)
