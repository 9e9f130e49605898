"""The LightningModule: any network, any loss of the registry, imbalance-aware evaluation."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import lightning as L
import torch
from torch import nn

from imbloss.batch_stats import BatchStats
from imbloss.distributed import gather_all, gather_batch
from imbloss.metrics import classification_summary

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
LOGGED_FIGURES = ("gmean", "auc", "f1", "acc", "minority_acc", "majority_acc")


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the step is stopped before the optimiser."""


class ImbalancedClassifier(L.LightningModule):
    """Trains ``net`` with ``loss_fn`` and evaluates per-class recall, G-mean, AUC and F1.

    The loss receives the epoch through its ``set_epoch`` hook at the start of every training epoch
    (deferred re-weighting uses it). Validation figures are logged as ``val/<figure>`` every epoch
    (the checkpoint callback selects on ``val/gmean``); the test evaluation keeps its targets and
    probabilities in ``test_target`` / ``test_probs`` and its figures in ``test_summary``.
    ``batch_stats`` counts the classes of every training batch of the fit (on the device, read
    once at the end: :class:`~imbloss.batch_stats.BatchStats`).
    """

    def __init__(
        self,
        net: nn.Module,
        loss_fn: nn.Module,
        optimizer: OptimizerFactory,
        minority_classes: Sequence[int] = (),
    ) -> None:
        super().__init__()
        self.net = net
        self.loss_fn = loss_fn
        self.optimizer_factory = optimizer
        self.minority_classes = list(minority_classes)
        self._eval_probs: list[torch.Tensor] = []
        self._eval_targets: list[torch.Tensor] = []
        self.test_target: torch.Tensor | None = None
        self.test_probs: torch.Tensor | None = None
        self.test_summary: dict | None = None
        self.batch_stats: BatchStats | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer_factory(self.parameters())

    def on_fit_start(self) -> None:
        self.batch_stats = None  # created at the first batch, with the logits' class count

    def on_train_epoch_start(self) -> None:
        set_epoch = getattr(self.loss_fn, "set_epoch", None)
        if set_epoch is not None:
            set_epoch(self.current_epoch)

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, y = batch
        logits, y = gather_batch(self(x), y)  # the global batch under DDP
        loss = self.loss_fn(logits, y)
        if self.batch_stats is None:
            self.batch_stats = BatchStats(logits.shape[-1], device=y.device)
        self.batch_stats.update(y)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"training loss is {loss.item()} at epoch {self.current_epoch}, batch {batch_idx}; "
                "stopped before the optimiser step (lower the learning rate or check the inputs)"
            )
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y))
        return loss

    def _evaluation_step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> None:
        x, y = batch
        logits = self(x)
        self.log(f"{stage}/loss", self.loss_fn(logits, y), on_epoch=True, batch_size=len(y))
        self._eval_probs.append(torch.softmax(logits.float(), dim=1).detach().cpu())
        self._eval_targets.append(y.detach().cpu())

    def _collect(self) -> tuple[torch.Tensor, torch.Tensor, dict]:
        probs, target = (  # every process's predictions, gathered once under DDP
            gather_all(torch.cat(parts).to(self.device)).cpu()
            for parts in (self._eval_probs, self._eval_targets)
        )
        self._eval_probs.clear()
        self._eval_targets.clear()
        return probs, target, classification_summary(probs, target, self.minority_classes)

    def _log_summary(self, stage: str, summary: dict) -> None:
        for name in LOGGED_FIGURES:
            if summary[name] is not None:
                self.log(f"{stage}/{name}", summary[name], prog_bar=name == "gmean")

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluation_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        _, _, summary = self._collect()
        self._log_summary("val", summary)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluation_step(batch, "test")

    def on_test_epoch_end(self) -> None:
        self.test_probs, self.test_target, self.test_summary = self._collect()
        self._log_summary("test", self.test_summary)
