"""The training loop of one stack: K members, each trained as a separate run would be.

Member k is an :class:`~imbloss.module.ImbalancedClassifier` built as the single pipeline builds
it (same initial weights for the same seed) and a training seed. Each epoch e:

1. every member's loss gets ``set_epoch(e)`` (e.g. ``wldam``'s deferred re-weighting), and the
   optimiser the learning rate of epoch e (the members' shared ``lr_schedule``,
   :func:`~imbloss.lr_schedules.set_epoch_lr`: the rates a Lightning fit's ``LambdaLR`` gives),
   logged as ``lr``;
2. member k visits ``datamodule.train_batches(seed_k)`` at epoch e — the exact batch order a
   separate run with that seed gets; step j gathers each member's j-th batch from the shared uint8
   tensors (on the training device) into one [K, B, ...] input;
3. the stacked network (``vectorize``: ``vmap``, else a loop over the members — see
   :mod:`~imbloss.stacked.network`) gives logits [K, B, C]; loss_k = member k's loss of its
   slice; the backward pass of ``Σ_k loss_k`` gives every member its own gradient (the members
   share no parameter); one optimiser over the stacked tensors steps all members (Adam and SGD
   act element by element, so this equals K separate optimisers);
4. the NaN guard (:class:`~imbloss.finite.FiniteGuard`, on the device) undoes the update of a
   member whose loss was not finite; at the end of the epoch a failed member is reported and stops
   (its weights stay frozen, it is no longer validated);
5. validation: every member's logits on the same validation batches (``eval_batch_size``),
   the figures of :func:`~imbloss.metrics.classification_summary` per member, ``val/loss`` and
   ``train/loss`` as batch-size-weighted means over the epoch's batches (as Lightning logs them),
   and checkpoint selection as ``ModelCheckpoint(monitor="val/gmean", mode="max",
   save_top_k=1)`` does: the first epoch of the highest validation G-mean (float32 comparison).

Each healthy member ends with its selected and last weights, the validation G-mean and AUC of
each (the post-fit stage need not validate them again), and the class counts of its training
batches (:class:`~imbloss.batch_stats.BatchStats`, counters of shape [K, C] on the device).

Resuming: at the end of an epoch but the last, at most every ``save_every_s`` seconds (0: every
epoch), ``on_state`` gets the whole training state (:class:`~imbloss.stacked.state.StackState`);
a fit given one as ``resume_from`` continues at the next epoch as if never stopped (the batch order
is a function of seed and epoch, the loss's ``set_epoch`` is called at every epoch, the random
generators are put back); members that had failed are reported to ``on_failure`` again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor

from imbloss.batch_stats import BatchStats
from imbloss.data import ImbalancedDataModule
from imbloss.finite import FiniteGuard, NonFiniteRecord
from imbloss.lr_schedules import set_epoch_lr
from imbloss.metrics import VAL_FIGURES, classification_summary
from imbloss.module import LOGGED_FIGURES, ImbalancedClassifier
from imbloss.runs.resume import rng_state, set_rng_state
from imbloss.stacked.network import StackedNetwork
from imbloss.stacked.state import StackState

log = logging.getLogger(__name__)


@dataclass
class MemberOutcome:
    """What one member's fit left: its selected weights, or its failure."""

    best_gmean: Tensor | None = None  # float32 scalar, as ModelCheckpoint compares it
    best_epoch: int = -1
    best_step: int = 0
    best_state: dict[str, Tensor] = field(default_factory=dict)
    last_state: dict[str, Tensor] = field(default_factory=dict)
    best_val: dict[str, float] = field(default_factory=dict)  # {"gmean", "auc"}, selected epoch
    last_val: dict[str, float] = field(default_factory=dict)  # the same, final epoch
    batch_stats: dict[str, Any] | None = None  # BatchStats.summary() of its training batches
    failure: NonFiniteRecord | None = None

    def state_dict(self) -> dict[str, Any]:
        """The outcome as plain data and tensors (its failure as a dict)."""
        state = vars(self).copy()
        state["failure"] = None if self.failure is None else asdict(self.failure)
        return state

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> MemberOutcome:
        """The outcome of :meth:`state_dict`."""
        failure = state["failure"]
        record = None if failure is None else NonFiniteRecord(**failure)
        return cls(**{**state, "failure": record})


# (epoch, step, {member: its logged figures}) after each epoch's validation
EpochCallback = Callable[[int, int, dict[int, dict[str, float]]], None]
# (member, its failure) when a member's loss is found non-finite
FailureCallback = Callable[[int, NonFiniteRecord], None]
# the training state at the end of an epoch, when one is due
StateCallback = Callable[[StackState], None]


def limited_batches(num_batches: int, limit: int | float) -> int:
    """Lightning's ``limit_train_batches``: an int caps the count, a float keeps that share."""
    if isinstance(limit, float):
        return int(num_batches * limit)
    return min(num_batches, int(limit))


def forward_autocast(device: torch.device, precision: str) -> torch.autocast:
    """The autocast context of a forward pass in ``precision`` (Lightning's name)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16-mixed")


def fit_stack(
    modules: Sequence[ImbalancedClassifier],
    seeds: Sequence[int],
    datamodule: ImbalancedDataModule,
    max_epochs: int,
    device: torch.device,
    limit_train_batches: int | float = 1.0,
    vectorize: bool = True,
    on_epoch_end: EpochCallback | None = None,
    on_failure: FailureCallback | None = None,
    resume_from: StackState | None = None,
    on_state: StateCallback | None = None,
    save_every_s: float = 0.0,
    precision: str = "32-true",
    final_state: bool = False,
) -> tuple[list[MemberOutcome], int]:
    """Train ``modules`` (one architecture, one optimiser setting) as one stack; see the module
    docstring. The modules' networks are left untouched; the outcomes hold the selected weights.
    Returns the outcomes and the number of optimiser steps taken (those before ``resume_from``
    included). ``precision="bf16-mixed"`` runs the forward passes under bf16 autocast, as
    Lightning's precision plugin does for a single run; the losses compute in float32.
    ``final_state``: ``on_state`` also gets the state after the last epoch (a pass stopped
    early, to be continued later)."""
    fit_started = time.perf_counter()
    size = len(modules)
    stack = StackedNetwork([m.net for m in modules], device, vectorize)
    autocast = forward_autocast(device, precision)
    loss_fns = [m.loss_fn.to(device) for m in modules]
    params = stack.parameters()
    optimizer = modules[0].optimizer_factory(params)
    base_lrs = [group["lr"] for group in optimizer.param_groups]  # before a state is restored
    guard = FiniteGuard((size,))
    batch_stats = BatchStats(datamodule.num_classes, device=device, shape=(size,))
    outcomes = [MemberOutcome() for _ in modules]
    alive = list(range(size))

    member_batches = [datamodule.train_batches(seed) for seed in seeds]
    images = member_batches[0].images.to(device)
    targets = member_batches[0].targets.to(device)
    batch_size = member_batches[0].batch_size
    num_batches = limited_batches(len(member_batches[0]), limit_train_batches)
    step, first_epoch, previous_s = 0, 0, 0.0
    if resume_from is not None:
        batch_stats = _restore(resume_from, stack, optimizer, guard, outcomes, device)
        alive = [k for k in range(size) if outcomes[k].failure is None]
        step, first_epoch = resume_from.step, resume_from.epochs_done
        previous_s = resume_from.fit_time_s
        for k, outcome in enumerate(outcomes):  # their folders' error.json went with the re-run
            if outcome.failure is not None and on_failure is not None:
                on_failure(k, outcome.failure)
    saved = time.perf_counter()
    for epoch in range(first_epoch, max_epochs):
        started = time.perf_counter()
        for loss_fn in loss_fns:
            set_epoch = getattr(loss_fn, "set_epoch", None)
            if set_epoch is not None:
                set_epoch(epoch)
        lr = set_epoch_lr(optimizer, base_lrs, modules[0].lr_schedule, epoch)
        orders = []
        for batches in member_batches:
            batches.set_epoch(epoch)
            orders.append(batches.epoch_indices())
        order = torch.stack(orders).to(device)  # [K, samples per epoch]
        stack.train()
        loss_sum = torch.zeros(size, device=device)
        seen = 0
        for j in range(num_batches):
            positions = order[:, j * batch_size : (j + 1) * batch_size]
            count = positions.shape[1]
            x, y = datamodule.transform_batch(
                (images[positions.reshape(-1)], targets[positions.reshape(-1)]), training=True
            )
            x, y = x.view(size, count, *x.shape[1:]), y.view(size, count)
            batch_stats.update(y)
            with autocast:
                logits = stack(x)
            losses = torch.stack([fn(logits[k], y[k]) for k, fn in enumerate(loss_fns)])
            guard.observe(losses, epoch, j)
            optimizer.zero_grad(set_to_none=True)
            losses.sum().backward()
            before = guard.snapshot(params)
            optimizer.step()
            guard.keep_finite(params, before)
            loss_sum += losses.detach().float() * count
            seen += count
            step += 1

        for k, record in guard.failures().items():
            if outcomes[k].failure is None:
                outcomes[k].failure = record
                alive.remove(k)
                log.warning("stack member %d failed: %s", k, record.message())
                if on_failure is not None:
                    on_failure(k, record)
        train_loss = (loss_sum / max(seen, 1)).cpu()
        with autocast:
            figures, val = _validate(stack, loss_fns, datamodule, alive, device, batch_size)
        for k in alive:
            figures[k]["train/loss"] = float(train_loss[k])
            figures[k]["lr"] = lr
            outcomes[k].last_val = val[k]
            _select(outcomes[k], stack, k, figures[k]["val/gmean"], epoch, step)
        if on_epoch_end is not None:
            on_epoch_end(epoch, step, figures)
        log.info(
            "stack of %d: epoch %d/%d in %.1f s (%d members training)",
            size,
            epoch + 1,
            max_epochs,
            time.perf_counter() - started,
            len(alive),
        )
        due = time.perf_counter() - saved >= save_every_s
        last = epoch + 1 == max_epochs
        if on_state is not None and ((not last and due) or (last and final_state)):
            elapsed_s = previous_s + time.perf_counter() - fit_started
            on_state(
                _capture(epoch + 1, step, stack, optimizer, guard, outcomes, batch_stats, elapsed_s)
            )
            saved = time.perf_counter()
    for k in alive:
        outcomes[k].last_state = stack.member_state(k)
        outcomes[k].batch_stats = batch_stats.summary(k)
    return outcomes, step


def _capture(
    epochs_done: int,
    step: int,
    stack: StackedNetwork,
    optimizer: torch.optim.Optimizer,
    guard: FiniteGuard,
    outcomes: Sequence[MemberOutcome],
    batch_stats: BatchStats,
    fit_time_s: float,
) -> StackState:
    """The training state after ``epochs_done`` epochs (every tensor copied to the CPU: training
    goes on in place)."""
    return StackState(
        epochs_done=epochs_done,
        step=step,
        params=_cpu_copy(stack.params),
        buffers=_cpu_copy(stack.buffers),
        optimizer=_cpu_copy(optimizer.state_dict()),
        outcomes=[_cpu_copy(outcome.state_dict()) for outcome in outcomes],
        guard=_cpu_copy(guard.state_dict()),
        batch_stats=_cpu_copy(batch_stats.state_dict()),
        rng=rng_state(),
        fit_time_s=fit_time_s,
    )


def _cpu_copy(value: Any) -> Any:
    """``value`` with every tensor in it (in dicts, lists, tuples) replaced by a CPU copy."""
    if isinstance(value, Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, dict):
        return {key: _cpu_copy(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_cpu_copy(item) for item in value)
    return value


@torch.no_grad()
def _restore(
    state: StackState,
    stack: StackedNetwork,
    optimizer: torch.optim.Optimizer,
    guard: FiniteGuard,
    outcomes: list[MemberOutcome],
    device: torch.device,
) -> BatchStats:
    """Put ``state`` into the fit's parts (tensors copied in place, keeping their layout) and the
    random generators; returns the restored training-batch counters."""
    if len(state.outcomes) != len(outcomes):
        raise ValueError(f"a state of {len(state.outcomes)} members for a stack of {len(outcomes)}")
    for name, value in state.params.items():
        stack.params[name].copy_(value)
    for name, value in state.buffers.items():
        stack.buffers[name].copy_(value)
    optimizer.load_state_dict(state.optimizer)
    guard.load_state_dict(state.guard, device)
    outcomes[:] = [MemberOutcome.from_state_dict(o) for o in state.outcomes]
    set_rng_state(state.rng)
    return BatchStats.from_state_dict(state.batch_stats, device)


def _select(
    outcome: MemberOutcome, stack: StackedNetwork, k: int, gmean: float, epoch: int, step: int
) -> None:
    """Keep member k's weights (and the validation figures of this epoch, ``last_val``) if
    ``gmean`` beats its best so far (strictly, in float32)."""
    current = torch.tensor(gmean, dtype=torch.float32)
    if outcome.best_gmean is None or bool(current > outcome.best_gmean):
        outcome.best_gmean = current
        outcome.best_epoch = epoch
        outcome.best_step = step
        outcome.best_state = stack.member_state(k)
        outcome.best_val = outcome.last_val


@torch.no_grad()
def _validate(
    stack: StackedNetwork,
    loss_fns: Sequence[torch.nn.Module],
    datamodule: ImbalancedDataModule,
    members: Sequence[int],
    device: torch.device,
    chunk: int,
) -> tuple[dict[int, dict[str, float]], dict[int, dict[str, float]]]:
    """Every member's validation figures: the logged ones (names and float32 values as
    Lightning's) and, unrounded, ``{"gmean", "auc"}`` for the post-fit stage.

    The validation batches are those of the single run (``eval_batch_size``), so batch-level
    losses see the same batches; the forward pass goes through them in chunks of ``chunk``
    samples (the training batch size), bounding memory at K members. Losses and probabilities
    stay on the device until the pass ends: one transfer to the host per epoch, not per member
    and batch."""
    stack.train(False)
    alive = torch.tensor(list(members), dtype=torch.long, device=device)
    probs_parts: list[Tensor] = []
    loss_sum = torch.zeros(len(loss_fns), dtype=torch.float64, device=device)
    targets: list[Tensor] = []
    for images, target in datamodule.val_dataloader():
        x, y = datamodule.transform_batch((images.to(device), target.to(device)), training=False)
        logits = torch.cat([stack.shared(part) for part in x.split(chunk)], dim=1)
        losses = torch.stack([loss_fns[k](logits[k], y) for k in members])
        loss_sum.index_add_(0, alive, losses.double() * len(y))
        probs_parts.append(torch.softmax(logits.float(), dim=2))
        targets.append(y)
    probs, target = torch.cat(probs_parts, dim=1).cpu(), torch.cat(targets).cpu()
    loss_sum = loss_sum.cpu()
    figures: dict[int, dict[str, float]] = {}
    val: dict[int, dict[str, float]] = {}
    for k in members:
        summary = classification_summary(probs[k], target, datamodule.minority_classes)
        values = {"val/loss": float(loss_sum[k]) / len(target)}
        values |= {f"val/{n}": summary[n] for n in LOGGED_FIGURES if summary[n] is not None}
        figures[k] = {n: float(torch.tensor(v, dtype=torch.float32)) for n, v in values.items()}
        val[k] = {name: summary[name] for name in VAL_FIGURES}
    return figures, val
