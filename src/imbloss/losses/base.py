"""The base class of every loss: training-set class counts, optional class weights, epoch hook.

``forward(logits [N, C], target [N] int64)`` checks the shapes, promotes the logits to at least
float32 (so bf16/fp16 logits, e.g. under autocast, are handled in float32) with autocast disabled,
and hands them to the subclass's ``loss``. Every tensor derived from the class counts is a
non-persistent buffer: ``.to(device)`` moves it, and checkpoints do not depend on it (it is
recomputed from the counts and hyperparameters).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from imbloss.checks import checked_number


def checked_hparam(
    name: str, value: object, *, accepted: str, valid: Callable[[float], bool]
) -> float:
    """``value`` as a float if it is a finite real number satisfying ``valid``; else ConfigError."""
    return checked_number(f"loss hyperparameter {name}", value, accepted=accepted, valid=valid)


class ClassCountLoss(nn.Module, ABC):
    """A loss over logits built from the training-set ``class_counts`` (one count per class).

    ``class_weights`` (a buffer, ``None`` when the loss is unweighted) holds the per-class weights
    in force; weighted losses assign it in their constructor, and epoch-dependent ones in
    ``set_epoch``.
    """

    class_counts: Tensor
    class_weights: Tensor | None

    def __init__(self, class_counts: Sequence[int]) -> None:
        super().__init__()
        self.num_classes = len(class_counts)
        self.register_buffer(
            "class_counts", torch.as_tensor(class_counts, dtype=torch.int64), persistent=False
        )
        self.register_buffer("class_weights", None, persistent=False)

    def set_epoch(self, epoch: int) -> None:
        """Called by the LightningModule at the start of every training epoch; no-op by default."""

    def class_weights_for(self, logits: Tensor) -> Tensor | None:
        """The class weights in force, in the dtype of ``logits``; ``None`` when unweighted."""
        return None if self.class_weights is None else self.class_weights.to(logits.dtype)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Scalar loss of ``logits`` [N, C] for the labels ``target`` [N]."""
        if logits.ndim != 2 or logits.shape[1] != self.num_classes:
            raise ValueError(
                f"logits must have shape [N, {self.num_classes}], got {tuple(logits.shape)}"
            )
        if target.shape != logits.shape[:1]:
            raise ValueError(
                f"target must have shape [{logits.shape[0]}], got {tuple(target.shape)}"
            )
        compute_dtype = torch.promote_types(logits.dtype, torch.float32)
        with torch.autocast(device_type=logits.device.type, enabled=False):
            return self.loss(logits.to(compute_dtype), target)

    @abstractmethod
    def loss(self, logits: Tensor, target: Tensor) -> Tensor:
        """The loss on float32/float64 ``logits`` [N, C] with labels ``target`` [N]."""
