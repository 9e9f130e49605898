"""The loss registry: names, configs, grids, hyperparameter checks, the epoch hook and buffers."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from imbloss.errors import ConfigError
from imbloss.losses import ClassCountLoss, available_losses, build_loss, loss_spec

LOSS_CONF_DIR = Path(__file__).resolve().parents[1] / "conf" / "loss"

SPEC_NAMES = {
    "ce", "wce", "focal", "focal_alpha", "ldam", "wldam", "pf", "pfh",
    "mse", "mfe", "msfe", "cb", "la", "bsm",
}  # fmt: skip
PARAMETER_FREE = {"ce", "pf", "pfh", "mse", "mfe", "msfe", "bsm"}
SCALE_GRID = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10]
GAMMA_GRID = [0, 0.1, 0.2, 0.5, 1, 2, 5]
MARGIN_GRID = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]


def constructor_defaults(name: str) -> dict[str, object]:
    params = inspect.signature(loss_spec(name).cls.__init__).parameters
    return {h: params[h].default for h in loss_spec(name).hparams}


def test_registry_holds_exactly_the_spec_names() -> None:
    assert set(available_losses()) == SPEC_NAMES


@pytest.mark.parametrize("name", sorted(SPEC_NAMES))
def test_loss_config_file_builds_the_registered_loss_with_its_defaults(
    compose_train_cfg: Callable[..., DictConfig], name: str
) -> None:
    # the source's 200-epoch schedule, on which wldam's drw_epoch resolves to its default 160
    cfg = compose_train_cfg(f"loss={name}", "trainer.max_epochs=200").loss
    assert cfg._target_ == "imbloss.losses.build_loss"
    assert cfg.name == name
    hparams = {k: v for k, v in cfg.items() if not k.startswith("_") and k != "name"}
    assert hparams == constructor_defaults(name)
    loss_fn = instantiate(cfg, class_counts=[50, 5, 20])  # as the pipeline builds it
    assert type(loss_fn) is loss_spec(name).cls
    assert isinstance(loss_fn, ClassCountLoss)


def test_there_is_no_loss_config_without_a_registered_loss() -> None:
    assert {p.stem for p in LOSS_CONF_DIR.glob("*.yaml")} == SPEC_NAMES


def test_parameter_free_flags() -> None:
    assert {n for n in available_losses() if loss_spec(n).parameter_free} == PARAMETER_FREE
    for name in PARAMETER_FREE:
        assert loss_spec(name).hparams == ()


def test_grids_are_the_papers_section_4b_grids() -> None:
    """Sec. IV-B: 19 alpha values, 7 gamma values, 10 values of C; 19 x 7 for FL(alpha)."""
    assert dict(loss_spec("wce").grid) == {"scale": pytest.approx(SCALE_GRID)}
    assert dict(loss_spec("focal").grid) == {"gamma": pytest.approx(GAMMA_GRID)}
    assert dict(loss_spec("focal_alpha").grid) == {
        "gamma": pytest.approx(GAMMA_GRID),
        "scale": pytest.approx(SCALE_GRID),
    }
    for name in ("ldam", "wldam"):
        assert dict(loss_spec(name).grid) == {"max_m": pytest.approx(MARGIN_GRID)}
    sizes = {name: loss_spec(name).grid_size for name in ("wce", "focal", "focal_alpha", "ldam")}
    assert sizes == {"wce": 19, "focal": 7, "focal_alpha": 133, "ldam": 10}
    for name in ("cb", "la", *PARAMETER_FREE):
        assert loss_spec(name).grid == {}


def test_unknown_loss_name_lists_the_accepted_names() -> None:
    with pytest.raises(ConfigError, match=r"'nope'.*accepted: bsm, cb, ce"):
        build_loss("nope", class_counts=[5, 1])


def test_unknown_hyperparameter_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"gamma.*accepted: scale"):
        build_loss("wce", class_counts=[5, 1], gamma=2.0)


@pytest.mark.parametrize(
    ("name", "hparams", "bad"),
    [
        ("wce", {"scale": 0.0}, "scale=0.0"),
        ("focal_alpha", {"scale": -1.0}, "scale=-1.0"),
        ("focal", {"gamma": -0.5}, "gamma=-0.5"),
        ("focal", {"gamma": math.nan}, "gamma=nan"),
        ("focal", {"gamma": True}, "gamma=True"),
        ("cb", {"beta": 1.0}, "beta=1.0"),
        ("wldam", {"beta": -0.1}, "beta=-0.1"),
        ("ldam", {"max_m": -0.1}, "max_m=-0.1"),
        ("ldam", {"s": 0.0}, "s=0.0"),
        ("wldam", {"drw_epoch": 1.5}, "drw_epoch=1.5"),
        ("wldam", {"drw_epoch": -1}, "drw_epoch=-1"),
        ("la", {"tau": -1.0}, "tau=-1.0"),
        ("la", {"tau": "1"}, "tau='1'"),
    ],
)
def test_bad_hyperparameter_value_raises_config_error(
    name: str, hparams: dict[str, object], bad: str
) -> None:
    with pytest.raises(ConfigError, match=rf"{bad}.*accepted: "):
        build_loss(name, class_counts=[50, 5], **hparams)


def test_logits_of_the_wrong_width_are_refused() -> None:
    loss_fn = build_loss("pf", class_counts=[5, 1, 1])
    with pytest.raises(ValueError, match=r"\[N, 3\]"):
        loss_fn(torch.zeros(4, 2), torch.zeros(4, dtype=torch.int64))


@pytest.mark.parametrize("name", sorted(SPEC_NAMES - {"wldam"}))
def test_set_epoch_leaves_every_other_loss_unchanged(name: str) -> None:
    logits = torch.randn(8, 3, generator=torch.Generator().manual_seed(3))
    target = torch.tensor([0, 0, 0, 0, 1, 1, 2, 0])
    loss_fn = build_loss(name, class_counts=[40, 10, 4])
    before = loss_fn(logits, target)
    loss_fn.set_epoch(10_000)
    assert torch.equal(loss_fn(logits, target), before)


def test_wldam_switches_effective_number_weights_on_at_drw_epoch() -> None:
    """counts [1, 2], beta 0.5: w = (0.5/0.5, 0.5/0.75) = (1, 2/3), rescaled to sum 2: (1.2, 0.8).

    Margins max_m * N_j^(-1/4) / max: (0.5, 0.5 * 2^(-1/4)); s = 1; logits [1, 0] (label 0) and
    [0, 1] (label 1), so each sample's CE is softplus(-(1 - m_y)).
    """
    loss_fn = build_loss("wldam", class_counts=[1, 2], max_m=0.5, s=1.0, drw_epoch=3, beta=0.5)
    logits = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    target = torch.tensor([0, 1])
    ce_0 = math.log1p(math.exp(-(1 - 0.5)))
    ce_1 = math.log1p(math.exp(-(1 - 0.5 * 2**-0.25)))
    unweighted = (ce_0 + ce_1) / 2
    reweighted = (1.2 * ce_0 + 0.8 * ce_1) / (1.2 + 0.8)
    for epoch, expected in [(0, unweighted), (2, unweighted), (3, reweighted), (7, reweighted)]:
        loss_fn.set_epoch(epoch)
        assert loss_fn(logits, target).item() == pytest.approx(expected, rel=1e-6), epoch


def test_wldam_with_drw_epoch_zero_is_weighted_from_construction() -> None:
    logits = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.3, 0.1]])
    target = torch.tensor([0, 1, 1])
    weighted = build_loss("wldam", class_counts=[1, 2], drw_epoch=0, beta=0.5)
    assert torch.equal(weighted.class_weights, torch.tensor([1.2, 0.8]))
    unweighted = build_loss("ldam", class_counts=[1, 2])
    assert not torch.allclose(weighted(logits, target), unweighted(logits, target))


@pytest.mark.parametrize("name", sorted(SPEC_NAMES))
def test_count_tensors_are_buffers_that_move_and_stay_out_of_checkpoints(name: str) -> None:
    loss_fn = build_loss(name, class_counts=[30, 3, 9])
    loss_fn.set_epoch(10_000)
    assert loss_fn.state_dict() == {}
    buffers = dict(loss_fn.named_buffers())
    assert "class_counts" in buffers
    moved = loss_fn.to("meta")
    assert all(b.device.type == "meta" for b in moved.buffers())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("name", sorted(SPEC_NAMES))
def test_loss_on_cuda_matches_cpu(name: str) -> None:
    logits = torch.randn(32, 5, generator=torch.Generator().manual_seed(0)) * 3
    target = torch.tensor([0, 1, 2, 3] * 8)
    loss_fn = build_loss(name, class_counts=[500, 50, 200, 5, 100])
    loss_fn.set_epoch(10_000)
    on_cpu = loss_fn(logits, target)
    on_gpu = loss_fn.to("cuda")(logits.cuda(), target.cuda())
    assert on_gpu.device.type == "cuda"
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, rtol=1e-5, atol=1e-6)


def test_every_loss_carries_a_distinct_label_and_row() -> None:
    specs = [loss_spec(name) for name in available_losses()]
    assert len({s.label for s in specs}) == len({s.order for s in specs}) == len(specs)
    assert loss_spec("pf").label == "PF-loss" and loss_spec("focal_alpha").label == "FL(α)"
    first_source_rows = ["ce", "wce", "focal", "focal_alpha", "ldam", "wldam", "pf"]
    ordered = sorted(available_losses(), key=lambda name: loss_spec(name).order)
    assert ordered[: len(first_source_rows)] == first_source_rows
