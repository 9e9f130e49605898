"""The LightningModule: any network, any loss of the registry, imbalance-aware evaluation."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import lightning as L
import torch
from torch import nn

from imbloss.batch_stats import BatchStats
from imbloss.distributed import gather_all, gather_batch
from imbloss.finite import FiniteGuard
from imbloss.lr_schedules import LRSchedule
from imbloss.metrics import VAL_FIGURES, classification_summary
from imbloss.models import use_preferred_layout

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
LOGGED_FIGURES = ("gmean", "auc", "f1", "acc", "minority_acc", "majority_acc")
VAL_FIGURES_KEY = "imbloss_val_figures"  # the checkpoint entry of ``val_figures``
BATCH_STATS_KEY = "imbloss_batch_stats"  # the checkpoint entry of ``batch_stats``


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the update it produced was discarded."""


class ImbalancedClassifier(L.LightningModule):
    """Trains ``net`` with ``loss_fn`` and evaluates per-class recall, G-mean, AUC and F1.

    The loss receives the epoch through its ``set_epoch`` hook at the start of every training epoch
    (deferred re-weighting uses it). A NaN or infinite training loss is caught on the device
    (:class:`imbloss.finite.FiniteGuard`, no host read per step): the optimiser step it produced is
    undone, later steps leave the weights as they were, and :class:`NonFiniteLossError` ends the fit
    at the end of that epoch. Validation figures are logged as ``val/<figure>`` every epoch
    (the checkpoint callback selects on ``val/gmean``); the test evaluation keeps its targets and
    probabilities in ``test_target`` / ``test_probs`` and its figures in ``test_summary``.
    ``batch_stats`` counts the classes of every training batch of the fit (on the device, read
    once at the end: :class:`~imbloss.batch_stats.BatchStats`). ``val_figures`` maps the
    global step of each validation to its unrounded validation ``gmean`` and ``auc`` when they were
    computed on the whole validation split of the data module (kept in checkpoints), so the
    post-fit stage need not validate the selected and the last weights again. The network's
    weights get the memory layout preferred on the training device
    (:func:`~imbloss.models.use_preferred_layout`: channels-last on the CPU) in
    :meth:`configure_model`.

    ``lr_schedule`` (:mod:`imbloss.lr_schedules`; None: the optimiser's rate throughout) sets each
    epoch's learning rate through a ``LambdaLR`` stepped at every epoch's end and kept in
    checkpoints; each epoch's rate (of the first parameter group) is logged as ``lr``.
    """

    def __init__(
        self,
        net: nn.Module,
        loss_fn: nn.Module,
        optimizer: OptimizerFactory,
        minority_classes: Sequence[int] = (),
        lr_schedule: LRSchedule | None = None,
    ) -> None:
        super().__init__()
        self.net = net
        self.loss_fn = loss_fn
        self.optimizer_factory = optimizer
        self.lr_schedule = lr_schedule
        self.minority_classes = list(minority_classes)
        self._eval_probs: list[torch.Tensor] = []
        self._eval_targets: list[torch.Tensor] = []
        self.test_target: torch.Tensor | None = None
        self.test_probs: torch.Tensor | None = None
        self.test_summary: dict | None = None
        self.finite_guard = FiniteGuard()
        self.batch_stats: BatchStats | None = None
        self._restored_batch_stats: dict[str, Any] | None = None
        self.val_figures: dict[int, dict[str, float]] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def configure_model(self) -> None:
        """Lay out the network's weights for the trainer's device. Lightning calls this hook at
        every fit, validate, test and predict, before restoring a checkpoint (which copies into
        the weights, keeping their layout), wrapping the model (DDP) and creating the optimiser.
        ``load_from_checkpoint`` calls it without a trainer (the device is not known yet): the
        weights are then left as they are, for the trainer that runs the module to lay out."""
        if self._trainer is not None:
            use_preferred_layout(self.net, self.trainer.strategy.root_device)

    def configure_optimizers(self) -> torch.optim.Optimizer | dict[str, Any]:
        optimizer = self.optimizer_factory(self.parameters())
        if self.lr_schedule is None:
            return optimizer
        scheduler = {"scheduler": self.lr_schedule.scheduler(optimizer), "interval": "epoch"}
        return {"optimizer": optimizer, "lr_scheduler": scheduler}

    def on_fit_start(self) -> None:
        self.batch_stats = None  # created at the first batch, with the logits' class count

    def on_train_epoch_start(self) -> None:
        set_epoch = getattr(self.loss_fn, "set_epoch", None)
        if set_epoch is not None:
            set_epoch(self.current_epoch)
        lr = torch.tensor(self.trainer.optimizers[0].param_groups[0]["lr"], dtype=torch.float64)
        self.log("lr", lr, on_epoch=True, batch_size=1)  # float64, batch 1: logged as it is

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, y = batch
        logits, y = gather_batch(self(x), y)  # the global batch under DDP
        loss = self.loss_fn(logits, y)
        if self.batch_stats is None:
            self.batch_stats = BatchStats(logits.shape[-1], device=y.device)
        self.batch_stats.update(y)
        self.finite_guard.observe(loss, self.current_epoch, batch_idx)
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y))
        return loss

    def optimizer_step(
        self,
        epoch: int,
        batch_idx: int,
        optimizer: torch.optim.Optimizer,
        optimizer_closure: Callable[[], object] | None = None,
    ) -> None:
        """Lightning's step (the closure runs ``training_step`` and the backward pass), the
        guard putting back the weights if any loss so far was non-finite
        (:meth:`~imbloss.finite.FiniteGuard.guarded_step`)."""
        self.finite_guard.guarded_step(
            list(self.parameters()),
            lambda closure: optimizer.step(closure=closure),
            optimizer_closure,
        )

    def on_train_epoch_end(self) -> None:
        failure = self.finite_guard.failures().get(0)
        if failure is not None:
            raise NonFiniteLossError(failure.message())

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
        _, target, summary = self._collect()
        self._log_summary("val", summary)
        if not self.trainer.sanity_checking and self._whole_validation_split(len(target)):
            self.val_figures[self.global_step] = {name: summary[name] for name in VAL_FIGURES}

    def _whole_validation_split(self, samples: int) -> bool:
        """True when ``samples`` validated are exactly the data module's validation split (not a
        ``limit_val_batches`` share, not a padded data-parallel gather)."""
        counts = getattr(self.trainer.datamodule, "val_class_counts", None)
        return counts is not None and samples == sum(counts)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[VAL_FIGURES_KEY] = self.val_figures
        if self.batch_stats is not None:
            checkpoint[BATCH_STATS_KEY] = self.batch_stats.state_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.val_figures = dict(checkpoint.get(VAL_FIGURES_KEY, {}))
        self._restored_batch_stats = checkpoint.get(BATCH_STATS_KEY)

    def on_train_start(self) -> None:
        """A resumed fit goes on counting from the checkpoint's batch statistics (restored here:
        ``on_fit_start``, which resets them, runs after the checkpoint is loaded)."""
        if self._restored_batch_stats is not None:
            self.batch_stats = BatchStats.from_state_dict(self._restored_batch_stats, self.device)
            self._restored_batch_stats = None

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluation_step(batch, "test")

    def on_test_epoch_end(self) -> None:
        self.test_probs, self.test_target, self.test_summary = self._collect()
        self._log_summary("test", self.test_summary)
