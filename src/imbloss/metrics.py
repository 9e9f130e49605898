"""Imbalance-aware evaluation figures from predicted class probabilities (torchmetrics).

- per-class recall r_j (``multiclass_recall(average=None)``);
- G-mean = (prod_j r_j)^(1/C), 0 as soon as one recall is 0 (first source, Sec. IV);
- AUC: binary ROC-AUC on the probability of label 1 for two classes, macro one-vs-rest otherwise;
- AUC of hard predictions (:func:`hard_prediction_auc`): the same AUC with each class's score
  replaced by the indicator of its being predicted (argmax), so AUC_j = (TPR_j + TNR_j) / 2;
- F1: macro F1; for two classes also ``f1_minority``, the F1 of label 1 (second source, Sec. III-3);
- minority / majority accuracy: mean recall over the classes the protocol made minority / the rest
  (None where the protocol names no minority class);
- many / medium / few-shot accuracy (:func:`shot_accuracies`, the long-tail literature's split of
  the classes by training-set size, from Liu et al. 2019, OLTR): mean
  recall over the classes with more than ``many`` (100) training images, ``few`` to ``many``
  (20-100) and fewer than ``few`` (20); None for a group without a class;
- top-1 error (:func:`top1_error`): ``1 - acc`` where the test set is balanced (every class the same
  count), as the CIFAR-LT papers report it; None otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torchmetrics.functional.classification import (
    binary_auroc,
    multiclass_accuracy,
    multiclass_auroc,
    multiclass_f1_score,
    multiclass_recall,
)

from imbloss.errors import ConfigError

# The validation figures kept for model selection and its report (val_gmean, val_auc): the fit
# records them per step, the post-fit stage reads them back.
VAL_FIGURES = ("gmean", "auc")
SHOT_GROUPS = ("many", "medium", "few")
SHOT_FIGURES = tuple(f"{group}_shot_acc" for group in SHOT_GROUPS)


def geometric_mean(values: torch.Tensor) -> float:
    """Geometric mean of non-negative values; 0 if any value is 0."""
    if bool((values <= 0).any()):
        return 0.0
    return float(torch.exp(torch.log(values.double()).mean()))


def classification_summary(
    probs: torch.Tensor, target: torch.Tensor, minority_classes: Sequence[int] = ()
) -> dict[str, float | list[float] | None]:
    """All figures of one evaluation. ``probs`` [N, C] (rows sum to 1), ``target`` [N] int64."""
    num_classes = probs.shape[1]
    probs = probs.float()
    recall = multiclass_recall(probs, target, num_classes=num_classes, average=None)
    f1_per_class = multiclass_f1_score(probs, target, num_classes=num_classes, average=None)
    if num_classes == 2:
        auc = binary_auroc(probs[:, 1], target)
    else:
        auc = multiclass_auroc(probs, target, num_classes=num_classes, average="macro")
    minority = sorted(set(minority_classes))
    majority = [j for j in range(num_classes) if j not in minority]
    summary: dict[str, float | list[float] | None] = {
        "gmean": geometric_mean(recall),
        "auc": float(auc),
        "f1": float(f1_per_class.mean()),
        "acc": float(multiclass_accuracy(probs, target, num_classes=num_classes, average="micro")),
        "per_class_recall": [float(r) for r in recall],
        "minority_acc": float(recall[minority].mean()) if minority else None,
        "majority_acc": float(recall[majority].mean()) if majority else None,
    }
    if num_classes == 2:
        summary["f1_minority"] = float(f1_per_class[1])
    return summary


def hard_prediction_auc(
    probs: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor
) -> float:
    """ROC-AUC of the predicted labels instead of the scores, as one-vs-rest AUCs of one-hot
    predictions: with the score of class j the indicator 1[argmax_k p_k = j] and ties counted one
    half (Mann-Whitney),

        AUC_j = TPR_j (1 − FPR_j) + ½ (TPR_j FPR_j + (1 − TPR_j)(1 − FPR_j)) = (TPR_j + TNR_j) / 2,

    ``AUC_1`` for two classes (label 1 positive), the mean over classes otherwise, like ``auc`` of
    :func:`classification_summary`. A class absent from ``target`` makes it NaN.
    ``probs`` [N, C], ``target`` [N] integers, on the CPU (NumPy: its argmax is several times
    faster than torch's over a short last axis)."""
    probs, target = np.asarray(probs), np.asarray(target)
    num_classes = probs.shape[1]
    predicted = probs.argmax(axis=1)
    positives = np.bincount(target, minlength=num_classes).astype(np.float64)
    chosen = np.bincount(predicted, minlength=num_classes)
    true_positives = np.bincount(target[predicted == target], minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = true_positives / positives
        tnr = 1 - (chosen - true_positives) / (len(target) - positives)
    aucs = (tpr + tnr) / 2
    return float(aucs[1] if num_classes == 2 else aucs.mean())


@dataclass(frozen=True)
class ShotThresholds:
    """Many-shot: more than ``many`` training images; medium: ``few`` to ``many``; few-shot:
    fewer than ``few`` (the config's ``shots``; the literature's 20 and 100 by default)."""

    few: int = 20
    many: int = 100

    def __post_init__(self) -> None:
        counts = (self.few, self.many)
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts) or (
            self.few > self.many
        ):
            raise ConfigError(
                f"shots.few={self.few!r}, shots.many={self.many!r} are invalid; accepted: "
                "integers 0 <= few <= many"
            )

    @classmethod
    def from_config(cls, shots: Mapping[str, Any] | None) -> ShotThresholds:
        """From the config node ``shots`` (None: the defaults)."""
        return cls() if shots is None else cls(**dict(shots))

    def groups(self, class_counts: Sequence[int]) -> dict[str, list[int]]:
        """The classes of each group: ``{"many": [...], "medium": [...], "few": [...]}``."""
        return {
            "many": [j for j, n in enumerate(class_counts) if n > self.many],
            "medium": [j for j, n in enumerate(class_counts) if self.few <= n <= self.many],
            "few": [j for j, n in enumerate(class_counts) if n < self.few],
        }


DEFAULT_SHOTS = ShotThresholds()


def shot_accuracies(
    per_class_recall: Sequence[float], groups: Mapping[str, Sequence[int]]
) -> dict[str, float | None]:
    """``many_shot_acc``, ``medium_shot_acc``, ``few_shot_acc``: the mean recall over each group's
    classes (:meth:`ShotThresholds.groups`); None for a group without a class."""
    recall = np.asarray(per_class_recall, dtype=np.float64)
    return {
        f"{group}_shot_acc": float(recall[list(groups[group])].mean()) if groups[group] else None
        for group in SHOT_GROUPS
    }


def top1_error(acc: float, class_counts: Sequence[int]) -> float | None:
    """``1 - acc`` on a balanced test set (every class the same positive count), else None: on a
    skewed one it would not be the error the CIFAR-LT papers report."""
    balanced = len(set(class_counts)) == 1 and class_counts[0] > 0
    return 1.0 - acc if balanced else None
