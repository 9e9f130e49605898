"""Data-parallel training with 2 CPU processes (gloo): every loss over the global batch, exactly.

Each process takes its part of one global batch (TensorBatches sharded by rank), runs a DDP-wrapped
network, gathers the global batch's logits and targets and takes the loss; the loss value and the
gradients after DDP's averaging must equal those of one process on the whole batch. Evaluation
outputs gathered once must be the whole split, in order, every sample once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from imbloss.data.batches import ShuffleSampler, TensorBatches
from imbloss.distributed import gather_all, gather_batch
from imbloss.losses import available_losses, build_loss

from conftest import FAST_OVERRIDES

WORLD = 2
NUM_CLASSES = 4
CLASS_COUNTS = [12, 3, 6, 2]  # 23 samples: the 2 shards of a batch differ in size (12 and 11)
BATCH = 23


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(7)
    targets = torch.repeat_interleave(torch.arange(NUM_CLASSES), torch.tensor(CLASS_COUNTS))
    images = torch.randn(len(targets), 6, generator=generator) + targets[:, None]
    return images, targets


def _network() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, NUM_CLASSES))


def _step(network: nn.Module, loss_name: str, images, targets) -> tuple[float, list[torch.Tensor]]:
    """One loss over the (gathered) batch, backward; the value and the parameters' gradients."""
    network.zero_grad()
    logits, target = gather_batch(network(images), targets)
    loss = build_loss(loss_name, class_counts=CLASS_COUNTS)(logits, target)
    loss.backward()
    return loss.item(), [p.grad.clone() for p in network.parameters()]


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    images, targets = _data()
    network = DistributedDataParallel(_network())
    train = TensorBatches(images, targets, BATCH, ShuffleSampler(len(targets), seed=3), rank, WORLD)
    (positions,) = list(train.index_batches())
    results = {
        name: _step(network, name, images[positions], targets[positions])
        for name in available_losses()
    }
    evaluation = TensorBatches(images, targets, 5, rank=rank, world_size=WORLD)
    local_targets = torch.cat([y for _, y in evaluation])
    gathered = gather_all(local_targets)
    torch.save(
        {"positions": positions, "results": results, "eval": (local_targets, gathered)},
        Path(out_dir) / f"rank{rank}.pt",
    )
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    out_dir = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(str(out_dir / "init"), str(out_dir)), nprocs=WORLD, join=True)
    return [torch.load(out_dir / f"rank{rank}.pt", weights_only=True) for rank in range(WORLD)]


def test_every_global_batch_is_split_between_the_ranks(ranks: list[dict]) -> None:
    global_batch = ShuffleSampler(BATCH, seed=3).epoch_indices(0)
    parts = [r["positions"] for r in ranks]
    assert [len(p) for p in parts] == [12, 11]
    assert torch.equal(torch.cat(parts), global_batch)  # each sample once, in the batch's order


@pytest.mark.parametrize("loss_name", available_losses())  # the batch-level ones and all others
def test_loss_and_gradients_equal_one_process_on_the_whole_batch(
    ranks: list[dict], loss_name: str
) -> None:
    images, targets = _data()
    positions = ShuffleSampler(BATCH, seed=3).epoch_indices(0)
    value, grads = _step(_network(), loss_name, images[positions], targets[positions])
    for rank in ranks:
        rank_value, rank_grads = rank["results"][loss_name]
        assert rank_value == pytest.approx(value, rel=1e-6)
        for got, expected in zip(rank_grads, grads, strict=True):
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7)


def test_evaluation_outputs_are_gathered_once_in_order(ranks: list[dict]) -> None:
    _, targets = _data()
    local = [r["eval"][0] for r in ranks]
    assert [len(part) for part in local] == [12, 11]
    for rank in ranks:
        assert torch.equal(rank["eval"][1], targets)  # the whole split, every sample once


@pytest.mark.slow
def test_ddp_run_on_2_cpu_processes_matches_one_process(run_cli, tmp_path: Path) -> None:
    """A real `trainer.devices=2 trainer.strategy=ddp` CLI run (gloo) against one process."""
    args = [*FAST_OVERRIDES, "model=mlp", "model.hidden=[32]", "loss=pf", "trainer.max_epochs=2"]
    runs = {"ddp": tmp_path / "ddp", "one": tmp_path / "one"}
    ddp = ["trainer.devices=2", "trainer.strategy=ddp", "trainer.accelerator=cpu"]
    assert run_cli([*args, *ddp, f"hydra.run.dir={runs['ddp']}"]).returncode == 0
    assert run_cli([*args, f"hydra.run.dir={runs['one']}"]).returncode == 0
    predictions = {name: np.load(run / "predictions.npz") for name, run in runs.items()}
    np.testing.assert_array_equal(predictions["ddp"]["target"], predictions["one"]["target"])
    np.testing.assert_allclose(predictions["ddp"]["probs"], predictions["one"]["probs"], atol=1e-4)
