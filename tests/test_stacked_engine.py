"""The stacked engine's parts: optimiser over stacked tensors, BatchNorm per member, NaN guard,
members that fail alone, and the grouping of jobs."""

import copy

import pytest
import torch
from omegaconf import read_write
from torch import nn

from imbloss.data import ImbalancedDataModule
from imbloss.finite import FiniteGuard
from imbloss.models import CifarResNet18
from imbloss.module import ImbalancedClassifier
from imbloss.stacked import memory
from imbloss.stacked.engine import fit_stack
from imbloss.stacked.grouping import group_jobs, group_key
from imbloss.stacked.memory import member_bytes, plan_passes, split_passes
from imbloss.stacked.network import StackedNetwork

from helpers.losses import NaNFromCall


@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.1),
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01),
    ],
    ids=["adam", "sgd"],
)
def test_one_optimizer_over_stacked_tensors_equals_k_separate_ones(make_optimizer) -> None:
    generator = torch.Generator().manual_seed(0)
    members, steps = 3, 5
    separate = [torch.randn(4, 6, generator=generator, requires_grad=True) for _ in range(members)]
    stacked = torch.stack([p.detach() for p in separate]).requires_grad_()
    separate_optimizers = [make_optimizer([p]) for p in separate]
    stacked_optimizer = make_optimizer([stacked])
    for _ in range(steps):
        grads = torch.randn(members, 4, 6, generator=generator)
        for p, g, optimizer in zip(separate, grads, separate_optimizers, strict=True):
            p.grad = g.clone()
            optimizer.step()
        stacked.grad = grads.clone()
        stacked_optimizer.step()
    for k, p in enumerate(separate):
        torch.testing.assert_close(stacked[k], p, rtol=0, atol=1e-7)
        assert not torch.equal(p, stacked[(k + 1) % members])


@pytest.fixture(scope="module")
def two_resnets() -> list[nn.Module]:
    torch.manual_seed(0)
    return [CifarResNet18((3, 8, 8), 10) for _ in range(2)]


@pytest.mark.parametrize("vectorize", [True, False], ids=["vmap", "loop"])
def test_batchnorm_keeps_running_statistics_per_member(two_resnets, vectorize: bool) -> None:
    nets = copy.deepcopy(two_resnets)
    stack = StackedNetwork(nets, torch.device("cpu"), vectorize)
    inputs = torch.randn(2, 4, 3, 8, 8)
    inputs[1] = inputs[1] * 3 + 1  # different statistics per member
    stacked_logits = stack(inputs)
    for k, net in enumerate(nets):
        torch.testing.assert_close(stacked_logits[k], net(inputs[k]), rtol=1e-4, atol=1e-4)
        state = stack.member_state(k)
        for name, buffer in net.state_dict().items():
            if "running" in name or "num_batches" in name:
                torch.testing.assert_close(state[name], buffer, rtol=1e-4, atol=1e-5)
    mean = "network.bn1.running_mean"
    assert not torch.allclose(stack.member_state(0)[mean], stack.member_state(1)[mean])


def test_guard_undoes_only_the_updates_of_non_finite_members() -> None:
    guard = FiniteGuard((3,))
    weights = torch.zeros(3, 2)
    before = guard.snapshot([weights])
    guard.observe(torch.tensor([1.0, float("nan"), 2.0]), epoch=4, batch=7)
    weights += torch.tensor([[1.0], [1.0], [1.0]])  # an optimiser step
    guard.keep_finite([weights], before)
    assert weights.tolist() == [[1.0, 1.0], [0.0, 0.0], [1.0, 1.0]]
    guard.observe(torch.tensor([3.0, 5.0, float("inf")]), epoch=4, batch=8)
    (nan_record, inf_record) = guard.failures().values()
    assert list(guard.failures()) == [1, 2]
    assert (nan_record.epoch, nan_record.batch) == (4, 7)
    assert inf_record.value == float("inf") and inf_record.batch == 8


def _members(datamodule, losses, seeds):
    in_features = 64
    modules = []
    for seed, loss_fn in zip(seeds, losses, strict=True):
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Flatten(), nn.Linear(in_features, datamodule.num_classes))
        optimizer = lambda p: torch.optim.Adam(p, lr=0.01)  # noqa: E731
        modules.append(ImbalancedClassifier(net, loss_fn, optimizer, datamodule.minority_classes))
    return modules


@pytest.mark.parametrize("vectorize", [True, False], ids=["vmap", "loop"])
def test_a_nan_member_fails_alone_and_the_others_train_as_without_it(tmp_path, vectorize) -> None:
    datamodule = ImbalancedDataModule("synthetic", str(tmp_path), ir=10, batch_size=100)
    datamodule.prepare_data()
    datamodule.setup("fit")
    seeds = [0, 1, 2]
    losses = [nn.CrossEntropyLoss(), NaNFromCall(3), nn.CrossEntropyLoss()]
    modules = _members(datamodule, losses, seeds)
    initial = copy.deepcopy(modules[1].net.state_dict())
    failures, epochs_seen = [], []
    outcomes, steps = fit_stack(
        modules,
        seeds,
        datamodule,
        max_epochs=2,
        device=torch.device("cpu"),
        vectorize=vectorize,
        on_epoch_end=lambda epoch, step, figures: epochs_seen.append(sorted(figures)),
        on_failure=lambda k, record: failures.append((k, record.epoch, record.batch)),
    )
    assert steps == 2 * 10  # 990 training samples in batches of 100
    assert failures == [(1, 0, 2)]
    assert epochs_seen == [[0, 2], [0, 2]]
    assert outcomes[1].failure is not None and outcomes[1].best_state == {}
    assert all(torch.equal(p, initial[n]) for n, p in modules[1].net.state_dict().items())

    healthy = _members(datamodule, [nn.CrossEntropyLoss(), nn.CrossEntropyLoss()], [0, 2])
    alone, _ = fit_stack(
        healthy, [0, 2], datamodule, max_epochs=2, device=torch.device("cpu"), vectorize=vectorize
    )
    for with_nan, without in zip((outcomes[0], outcomes[2]), alone, strict=True):
        assert with_nan.best_epoch == without.best_epoch
        for name, value in without.best_state.items():
            torch.testing.assert_close(with_nan.best_state[name], value, rtol=0, atol=1e-6)


def test_jobs_group_by_everything_but_loss_seed_and_bookkeeping(compose_train_cfg) -> None:
    base = ("dataset=synthetic", "model=mlp")
    configs = [
        compose_train_cfg(*base, "loss=ce", "seed=0"),
        compose_train_cfg(*base, "loss=focal", "loss.gamma=1.0", "seed=3", "tags=[x]"),
        compose_train_cfg(*base, "loss=ce", "optimizer.lr=0.1"),
        compose_train_cfg(*base, "loss=ce", "dataset.seed=1"),
        compose_train_cfg(*base, "loss=pf", "ir=20"),
        compose_train_cfg(*base, "loss=pf", "seed=5"),
    ]
    for index, config in enumerate(configs):  # every job has its own folder
        with read_write(config.hydra.runtime):
            config.hydra.runtime.output_dir = f"/runs/{index}"
    assert group_jobs([group_key(c) for c in configs]) == [[0, 1, 5], [2], [3], [4]]
    assert group_jobs(["a", None, "a", None]) == [[0, 2], [1], [3]]


def test_passes_split_a_group_evenly_under_the_cap() -> None:
    assert split_passes(133, 50) == [range(0, 45), range(45, 89), range(89, 133)]
    assert split_passes(6, 4) == [range(0, 3), range(3, 6)]
    assert split_passes(3, 8) == [range(0, 3)]


def test_pass_plan_fits_the_usable_memory_and_max_stack(monkeypatch) -> None:
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 5))  # P = 65; on 8 samples A = 96 + 40
    need = 4 * (4 * 65 + 3 * (8 * 12 + 8 * 5))
    assert member_bytes(net, (8, 1, 3, 4)) == need
    monkeypatch.setattr(memory, "available_bytes", lambda device: 10 * need + 7)
    plan = plan_passes(12, net, (8, 1, 3, 4), torch.device("cpu"), fraction=0.5)
    assert (plan.fit, [len(p) for p in plan.passes]) == (5, [4, 4, 4])  # 5 fit: 3 passes
    capped = plan_passes(12, net, (8, 1, 3, 4), torch.device("cpu"), 0.5, max_stack=2)
    assert [len(p) for p in capped.passes] == [2] * 6
    assert "5 members), max_stack=2 -> 6 pass(es) of [2, 2, 2, 2, 2, 2]" in capped.describe()
