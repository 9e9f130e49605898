"""Imbalance-aware evaluation figures from predicted class probabilities (torchmetrics).

- per-class recall r_j (``multiclass_recall(average=None)``);
- G-mean = (prod_j r_j)^(1/C), 0 as soon as one recall is 0 (first source, Sec. IV);
- AUC: binary ROC-AUC on the probability of label 1 for two classes, macro one-vs-rest otherwise;
- AUC of hard predictions (:func:`hard_prediction_auc`): the same AUC with each class's score
  replaced by the indicator of its being predicted (argmax), so AUC_j = (TPR_j + TNR_j) / 2;
- F1: macro F1; for two classes also ``f1_minority``, the F1 of label 1 (second source, Sec. III-3);
- minority / majority accuracy: mean recall over the classes the protocol made minority / the rest
  (None where the protocol names no minority class).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torchmetrics.functional.classification import (
    binary_auroc,
    multiclass_accuracy,
    multiclass_auroc,
    multiclass_f1_score,
    multiclass_recall,
)

# The validation figures kept for model selection and its report (val_gmean, val_auc): the fit
# records them per step, the post-fit stage reads them back.
VAL_FIGURES = ("gmean", "auc")


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
