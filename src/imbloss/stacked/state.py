"""The training state of a stacked pass at the end of an epoch, and its file.

:func:`~imbloss.stacked.engine.fit_stack` hands a :class:`StackState` to its ``on_state``
callback at the end of an epoch (after validation and selection) and continues from one given as
``resume_from``: the stacked parameters and buffers, the optimiser, every member's selection so
far, the NaN guard, the training-batch counters, the step, the random generators and the fit
time. :func:`write_stack_state` keeps it in one file, written through a temporary file and one
rename (a kill while writing leaves the previous state whole), with the positions of the pass's
members in their group; :func:`read_stack_state` reads it back (``weights_only``: plain data and
tensors only).

A pass that a rung of successive halving stops early (``stop_at_epoch``) leaves each member its
own slice of the final state (:func:`member_state`, a state of one member) in its folder; a later
pass of any members stopped at the same epoch continues from their slices put together
(:func:`join_states`). Every tensor of the state with a leading dimension is stacked over the
members (parameters, buffers, the optimiser's per-parameter state, the NaN guard, the batch
counters); the scalar ones (the optimiser's step count) are shared.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from imbloss.runs.outputs import atomic_file


@dataclass
class StackState:
    """Everything :func:`~imbloss.stacked.engine.fit_stack` needs to go on after ``epochs_done``
    epochs (plain data and tensors; ``outcomes`` and ``guard`` as their ``state_dict``)."""

    epochs_done: int
    step: int
    params: dict[str, Tensor]
    buffers: dict[str, Tensor]
    optimizer: dict[str, Any]
    outcomes: list[dict[str, Any]]
    guard: dict[str, Tensor | None]
    batch_stats: dict[str, Tensor | int]
    rng: dict[str, Any]
    fit_time_s: float


def write_stack_state(path: Path, state: StackState, members: list[int]) -> None:
    """Write ``state`` of the pass whose members are at ``members`` in their group, atomically."""
    with atomic_file(path) as handle:
        torch.save({"members": members, **vars(state)}, handle)


def read_stack_state(path: Path) -> tuple[list[int], StackState]:
    """The member positions and the state written by :func:`write_stack_state` into ``path``."""
    data = torch.load(path, map_location="cpu", weights_only=True)
    members = data.pop("members")
    return members, StackState(**data)


def _slice(value: Any, k: int) -> Any:
    """``value`` with every stacked tensor (one with a leading dimension) cut to member k's
    slice ``[k : k + 1]``; scalar tensors and plain data unchanged."""
    if isinstance(value, Tensor):
        return value[k : k + 1].clone() if value.dim() > 0 else value.clone()
    if isinstance(value, dict):
        return {key: _slice(item, k) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_slice(item, k) for item in value)
    return value


def _join(values: list[Any]) -> Any:
    """The members' ``values`` (same structure) put together: stacked tensors concatenated,
    everything else taken from the first (it must be the same in all)."""
    first = values[0]
    if isinstance(first, Tensor):
        return torch.cat(values) if first.dim() > 0 else first
    if isinstance(first, dict):
        return {key: _join([v[key] for v in values]) for key in first}
    if isinstance(first, list | tuple):
        return type(first)(_join([v[i] for v in values]) for i in range(len(first)))
    return first


def member_state(state: StackState, k: int) -> StackState:
    """Member k's slice of a pass's ``state``: a state of one member, its ``fit_time_s`` the
    member's share of the pass's time (``fit_time_s`` / members)."""
    members = len(state.outcomes)
    sliced = {
        name: _slice(getattr(state, name), k)
        for name in ("params", "buffers", "optimizer", "guard", "batch_stats")
    }
    return replace(
        state, **sliced, outcomes=[state.outcomes[k]], fit_time_s=state.fit_time_s / members
    )


def join_states(states: list[StackState]) -> StackState:
    """One pass's state from members' states after the same number of epochs (ValueError
    otherwise); its ``fit_time_s`` is the members' shares summed, the random generators those
    of the first."""
    done = {(s.epochs_done, s.step) for s in states}
    if len(done) != 1:
        raise ValueError(f"member states after different epochs and steps {sorted(done)}")
    joined = {
        name: _join([getattr(s, name) for s in states])
        for name in ("params", "buffers", "optimizer", "guard", "batch_stats")
    }
    return replace(
        states[0],
        **joined,
        outcomes=[outcome for s in states for outcome in s.outcomes],
        fit_time_s=sum(s.fit_time_s for s in states),
    )


def write_member_state(path: Path, state: StackState) -> None:
    """Write one member's state (:func:`member_state`) into its folder, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_stack_state(path, state, [0])


def read_member_state(path: Path) -> StackState:
    """A member's state written by :func:`write_member_state`."""
    return read_stack_state(path)[1]
