"""The loss registry: ``build_loss(name, class_counts, **hparams)`` for every name of SPEC.md.

Importing this package imports every loss family, which registers its losses.
"""

from imbloss.losses import (  # noqa: F401  (imported for registration)
    cross_entropy,
    focal,
    ldam,
    logit_adjusted,
    pf,
    squared_error,
)
from imbloss.losses.base import ClassCountLoss
from imbloss.losses.registry import (
    LossSpec,
    available_losses,
    build_loss,
    loss_spec,
    register_loss,
)

__all__ = [
    "ClassCountLoss",
    "LossSpec",
    "available_losses",
    "build_loss",
    "loss_spec",
    "register_loss",
]
