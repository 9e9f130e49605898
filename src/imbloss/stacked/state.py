"""The training state of a stacked pass at the end of an epoch, and its file.

:func:`~imbloss.stacked.engine.fit_stack` hands a :class:`StackState` to its ``on_state``
callback at the end of an epoch (after validation and selection) and continues from one given as
``resume_from``: the stacked parameters and buffers, the optimiser, every member's selection so
far, the NaN guard, the training-batch counters, the step, the random generators and the fit
time. :func:`write_stack_state` keeps it in one file, written through a temporary file and one
rename (a kill while writing leaves the previous state whole), with the positions of the pass's
members in their group; :func:`read_stack_state` reads it back (``weights_only``: plain data and
tensors only).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from imbloss.outputs import atomic_file


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
