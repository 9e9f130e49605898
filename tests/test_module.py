"""The LightningModule: the loss's epoch hook, and no NaN reaching the optimiser."""

import pytest
import torch
from torch import nn

from imbloss.data import ImbalancedDataModule
from imbloss.losses import build_loss
from imbloss.metrics import classification_summary
from imbloss.module import ImbalancedClassifier, NonFiniteLossError

from helpers.trainers import quiet_trainer


class RecordingLoss(nn.Module):
    """Cross-entropy that records the epochs it is told about."""

    def __init__(self) -> None:
        super().__init__()
        self.epochs: list[int] = []

    def set_epoch(self, epoch: int) -> None:
        self.epochs.append(epoch)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(logits, target)


class NaNFromCall(RecordingLoss):
    """Cross-entropy, NaN from the ``first_nan``-th call on (1-based)."""

    def __init__(self, first_nan: int) -> None:
        super().__init__()
        self.calls = 0
        self.first_nan = first_nan

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        loss = super().forward(logits, target)
        return loss * torch.tensor(float("nan")) if self.calls >= self.first_nan else loss


def _setup(loss_fn: nn.Module, tmp_path) -> tuple[ImbalancedClassifier, ImbalancedDataModule]:
    """A linear model on the synthetic data (step, IR=10, batches of 100), SGD with lr 0.1."""
    torch.manual_seed(0)
    datamodule = ImbalancedDataModule(
        "synthetic", str(tmp_path), protocol="step", ir=10, batch_size=100, eval_batch_size=500
    )
    datamodule.prepare_data()
    datamodule.setup("fit")
    in_features = int(torch.tensor(datamodule.input_shape).prod())
    net = nn.Sequential(nn.Flatten(), nn.Linear(in_features, datamodule.num_classes))
    module = ImbalancedClassifier(
        net, loss_fn, lambda p: torch.optim.SGD(p, lr=0.1), datamodule.minority_classes
    )
    return module, datamodule


def _fit(loss_fn: nn.Module, tmp_path, epochs: int) -> ImbalancedClassifier:
    module, datamodule = _setup(loss_fn, tmp_path)
    trainer = quiet_trainer(
        max_epochs=epochs,
        default_root_dir=tmp_path,
    )
    trainer.fit(module, datamodule=datamodule)
    return module


def test_loss_is_told_every_epoch(tmp_path) -> None:
    loss_fn = RecordingLoss()
    _fit(loss_fn, tmp_path, epochs=3)
    assert loss_fn.epochs == [0, 1, 2]


@pytest.mark.parametrize(("epochs", "reweighted"), [(2, False), (3, True)])
def test_deferred_reweighting_switches_on_through_the_hook(tmp_path, epochs, reweighted) -> None:
    loss_fn = build_loss("wldam", class_counts=[180, 18] * 5, drw_epoch=2)
    _fit(loss_fn, tmp_path, epochs=epochs)
    assert (loss_fn.class_weights is loss_fn.drw_weights) is reweighted


def test_non_finite_loss_ends_the_fit_at_the_end_of_its_epoch(tmp_path) -> None:
    loss_fn = NaNFromCall(first_nan=2)
    with pytest.raises(NonFiniteLossError, match="training loss is nan at epoch 0, batch 1"):
        _fit(loss_fn, tmp_path, epochs=3)
    assert loss_fn.epochs == [0]  # epoch 1 never started


def test_non_finite_loss_never_updates_the_weights(tmp_path) -> None:
    module, datamodule = _setup(NaNFromCall(first_nan=3), tmp_path)
    trainer = quiet_trainer(
        max_steps=2,
        limit_val_batches=0,
    )
    trainer.fit(module, datamodule=datamodule)
    after_two_steps = [p.detach().clone() for p in module.parameters()]
    trainer = quiet_trainer(
        max_epochs=1,
    )
    with pytest.raises(NonFiniteLossError, match="at epoch 0, batch 0"):
        trainer.fit(module, datamodule=datamodule)
    # every later loss is NaN: none of the epoch's steps (SGD, lr 0.1) moved a weight
    for before, after in zip(after_two_steps, module.parameters(), strict=True):
        assert torch.equal(before, after)


def _validation_figures(module: ImbalancedClassifier, datamodule: ImbalancedDataModule) -> dict:
    images, target = datamodule.transform_batch(datamodule._splits["val"], training=False)
    with torch.no_grad():
        probs = torch.softmax(module.net(images), 1)
    summary = classification_summary(probs, target, datamodule.minority_classes)
    return {"gmean": summary["gmean"], "auc": summary["auc"]}


def test_validation_figures_are_kept_per_step_for_the_post_fit_stage(tmp_path) -> None:
    module, datamodule = _setup(RecordingLoss(), tmp_path)
    steps_per_epoch = datamodule.steps_per_epoch
    quiet_trainer(max_epochs=2, num_sanity_val_steps=2).fit(module, datamodule=datamodule)
    # the sanity check (step 0) is not a validation of trained weights
    assert sorted(module.val_figures) == [steps_per_epoch, 2 * steps_per_epoch]
    final = module.val_figures[2 * steps_per_epoch]
    assert final == pytest.approx(_validation_figures(module, datamodule), abs=1e-6)
    checkpoint: dict = {}
    module.on_save_checkpoint(checkpoint)
    restored, _ = _setup(RecordingLoss(), tmp_path)
    restored.on_load_checkpoint(checkpoint)
    assert restored.val_figures == module.val_figures


def test_validation_of_part_of_the_split_is_not_kept(tmp_path) -> None:
    module, datamodule = _setup(RecordingLoss(), tmp_path)
    datamodule.eval_batch_size = 50
    quiet_trainer(max_epochs=1, limit_val_batches=1).fit(module, datamodule=datamodule)
    assert module.val_figures == {}
