"""K copies of one network trained side by side as stacked parameters (``torch.func``).

Member k's parameters and buffers are the k-th slices of tensors of shape [K, ...]
(``torch.func.stack_module_state``); one optimiser steps them all. The forward pass runs
``functional_call(network, (params_k, buffers_k), x_k)`` for every member, in one of two ways:

- ``vmap`` (``vectorize=True``): ``torch.func.vmap`` over the members, which PyTorch lowers to
  grouped convolutions and batched matrix products (the HFTA construction, built by the library):
  one large kernel per layer, what fills a GPU;
- a loop over the members (``vectorize=False``): each member's own kernels on views of the
  stacked tensors, as fast per member as a separate run where one member's batch already keeps the
  device busy (the CPU: grouped convolutions are slower there, see ``benchmarks/bench_stacked.py``).

Both compute every member's own network (up to float rounding for ``vmap``); BatchNorm running
statistics are buffers of shape [K, C] updated per member; dropout draws independent masks per
member. Each member's slices have the memory layout a single run's network has on the device
(:func:`imbloss.models.stacked_preferred_layout`: channels-last convolution weights on the CPU),
so both engines compute alike and a member is as fast as a single run.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from imbloss.models import stacked_preferred_layout


class StackedNetwork:
    """``len(nets)`` networks of one architecture as one stacked model on ``device``."""

    def __init__(
        self, nets: Sequence[nn.Module], device: torch.device, vectorize: bool = True
    ) -> None:
        params, buffers = stack_module_state(list(nets))
        self.vectorize = vectorize
        self.params = {
            k: stacked_preferred_layout(v.detach().to(device), device).requires_grad_()
            for k, v in params.items()
        }
        self.buffers = {
            k: stacked_preferred_layout(v.to(device), device) for k, v in buffers.items()
        }
        self.base = copy.deepcopy(nets[0]).to("meta")
        self.size = len(nets)

    def parameters(self) -> list[Tensor]:
        return list(self.params.values())

    def train(self, mode: bool = True) -> None:
        self.base.train(mode)

    def _call(self, params: dict[str, Tensor], buffers: dict[str, Tensor], x: Tensor) -> Tensor:
        return functional_call(self.base, (params, buffers), (x,))

    def _member_call(self, k: int, x: Tensor) -> Tensor:
        """Member k alone, on views of the stacked tensors (its buffers update in place)."""
        params = {name: value[k] for name, value in self.params.items()}
        buffers = {name: value[k] for name, value in self.buffers.items()}
        return self._call(params, buffers, x)

    def __call__(self, x: Tensor) -> Tensor:
        """Member k's logits of its own inputs: x [K, B, ...] -> [K, B, C]."""
        if not self.vectorize:
            return torch.stack([self._member_call(k, x[k]) for k in range(self.size)])
        return vmap(self._call, randomness="different")(self.params, self.buffers, x)

    def shared(self, x: Tensor) -> Tensor:
        """Every member's logits of the same inputs: x [B, ...] -> [K, B, C]."""
        if not self.vectorize:
            return torch.stack([self._member_call(k, x) for k in range(self.size)])
        return vmap(self._call, in_dims=(0, 0, None), randomness="different")(
            self.params, self.buffers, x
        )

    def member_state(self, k: int) -> dict[str, Tensor]:
        """Member k's ``state_dict`` (parameters and buffers), copied to the CPU."""
        tensors = {**self.params, **self.buffers}
        return {name: value[k].detach().cpu().clone() for name, value in tensors.items()}
