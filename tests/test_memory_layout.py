"""The weights' memory layout: channels-last on the CPU in both engines, computing what the
default layout computes, and checkpoints that load into ordinary networks."""

import copy

import pytest
import torch
from torch import nn

from imbloss.data import ImbalancedDataModule
from imbloss.models import CifarResNet18, FashionMNISTCNN, use_preferred_layout
from imbloss.module import ImbalancedClassifier
from imbloss.stacked.network import StackedNetwork

from helpers.trainers import quiet_trainer

CPU = torch.device("cpu")
CHANNELS_LAST = torch.channels_last


def _convolution_weights(net: nn.Module) -> list[torch.Tensor]:
    return [t for t in (*net.parameters(), *net.buffers()) if t.dim() == 4]


def _fmnist_cnn(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return FashionMNISTCNN((1, 12, 12), 10)


def test_cpu_layout_makes_4d_weights_channels_last_and_keeps_the_objects() -> None:
    net = CifarResNet18((3, 8, 8), 10)
    tensors = list(net.parameters()) + list(net.buffers())
    values = [t.detach().clone() for t in tensors]
    assert use_preferred_layout(net, CPU) is net
    assert all(w.is_contiguous(memory_format=CHANNELS_LAST) for w in _convolution_weights(net))
    assert not all(w.is_contiguous() for w in _convolution_weights(net))
    after = list(net.parameters()) + list(net.buffers())
    assert all(a is b for a, b in zip(after, tensors, strict=True))
    assert all(torch.equal(t, v) for t, v in zip(tensors, values, strict=True))
    assert all(t.is_contiguous() for t in tensors if t.dim() != 4)


def test_a_one_channel_convolution_gets_channels_last_strides_and_output() -> None:
    """With one input channel the default strides pass for channels-last; the weight must still
    get channels-last strides, or the first convolution writes its output NCHW."""
    net = use_preferred_layout(_fmnist_cnn(0), CPU)
    first = net.features[0].weight
    assert first.stride() == torch.empty_like(first, memory_format=CHANNELS_LAST).stride()
    output = net.features[0](torch.randn(2, 1, 12, 12))
    assert output.is_contiguous(memory_format=CHANNELS_LAST) and not output.is_contiguous()


def test_other_devices_keep_the_default_layout() -> None:
    net = _fmnist_cnn(0)
    pointers = [p.data_ptr() for p in net.parameters()]
    use_preferred_layout(net, torch.device("cuda"))  # not measured on a GPU: left as it is
    assert [p.data_ptr() for p in net.parameters()] == pointers
    assert all(w.is_contiguous() for w in _convolution_weights(net))


def test_an_optimizer_made_before_steps_the_laid_out_weights() -> None:
    net = _fmnist_cnn(0)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
    use_preferred_layout(net, CPU)
    before = [p.detach().clone() for p in net.parameters()]
    net(torch.randn(4, 1, 12, 12)).sum().backward()
    optimizer.step()
    assert all(not torch.equal(p, b) for p, b in zip(net.parameters(), before, strict=True))
    assert all(w.is_contiguous(memory_format=CHANNELS_LAST) for w in _convolution_weights(net))


@pytest.mark.parametrize(
    ("make_net", "shape"),
    [
        (lambda: _fmnist_cnn(0), (8, 1, 12, 12)),
        (lambda: CifarResNet18((3, 8, 8), 10), (8, 3, 8, 8)),
    ],
    ids=["fmnist_cnn", "resnet18"],
)
def test_outputs_and_gradients_equal_the_default_layout(make_net, shape) -> None:
    default = make_net()
    laid_out = use_preferred_layout(copy.deepcopy(default), CPU)
    x = torch.randn(shape)
    for net in (default, laid_out):
        net.eval()
        net(x).square().sum().backward()
        net.train()
    torch.testing.assert_close(laid_out.eval()(x), default.eval()(x), rtol=0, atol=1e-5)
    for p, q in zip(laid_out.parameters(), default.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("vectorize", [True, False], ids=["vmap", "loop"])
def test_stacked_members_are_channels_last_and_compute_as_separate_networks(vectorize) -> None:
    nets = [_fmnist_cnn(seed) for seed in (0, 1)]
    stack = StackedNetwork(nets, CPU, vectorize)
    stack.train(False)
    for value in stack.parameters():
        if value.dim() == 5:
            assert all(value[k].is_contiguous(memory_format=CHANNELS_LAST) for k in range(2))
    x = torch.randn(2, 8, 1, 12, 12)
    logits = stack(x)
    for k, net in enumerate(nets):
        torch.testing.assert_close(logits[k], net.eval()(x[k]), rtol=0, atol=1e-5)
        ordinary = _fmnist_cnn(2).eval()
        ordinary.load_state_dict(stack.member_state(k))
        torch.testing.assert_close(ordinary(x[k]), net(x[k]), rtol=0, atol=0)


def test_a_stacked_member_computes_bit_for_bit_what_the_single_engine_computes() -> None:
    """In loop mode (the CPU) member k runs its own kernels on slices that have the strides the
    single engine gives its network, the one-channel first convolution's included: the same
    float32 outputs and gradients, exactly."""
    nets = [_fmnist_cnn(seed) for seed in (0, 1)]
    singles = [use_preferred_layout(copy.deepcopy(net), CPU).eval() for net in nets]
    stack = StackedNetwork(nets, CPU, vectorize=False)
    stack.train(False)
    for name, value in stack.params.items():
        for k, single in enumerate(singles):
            assert value[k].stride() == dict(single.named_parameters())[name].stride(), name
    x = torch.randn(2, 8, 1, 12, 12)
    logits = stack(x)
    logits.square().sum().backward()
    for k, single in enumerate(singles):
        single_logits = single(x[k])
        single_logits.square().sum().backward()
        assert torch.equal(logits[k], single_logits)
        for name, value in stack.params.items():
            assert torch.equal(value.grad[k], dict(single.named_parameters())[name].grad), name


def test_a_checkpoint_of_a_channels_last_fit_loads_into_an_ordinary_network(tmp_path) -> None:
    datamodule = ImbalancedDataModule("synthetic", str(tmp_path), protocol="step", ir=10)
    datamodule.prepare_data()
    datamodule.setup("fit")
    torch.manual_seed(0)
    module = ImbalancedClassifier(
        FashionMNISTCNN(datamodule.input_shape, datamodule.num_classes),
        nn.CrossEntropyLoss(),
        lambda p: torch.optim.Adam(p, lr=0.01),
        datamodule.minority_classes,
    )
    trainer = quiet_trainer(max_steps=2, limit_val_batches=0, default_root_dir=tmp_path)
    trainer.fit(module, datamodule=datamodule)
    assert all(w.is_contiguous(memory_format=CHANNELS_LAST) for w in _convolution_weights(module))
    trainer.save_checkpoint(tmp_path / "fit.ckpt", weights_only=True)

    loaded = ImbalancedClassifier.load_from_checkpoint(
        tmp_path / "fit.ckpt",
        net=FashionMNISTCNN(datamodule.input_shape, datamodule.num_classes),
        loss_fn=nn.CrossEntropyLoss(),
        optimizer=torch.optim.Adam,
        weights_only=True,
    )
    x = torch.randn(4, *datamodule.input_shape)
    torch.testing.assert_close(loaded.eval()(x), module.eval()(x), rtol=0, atol=1e-5)
    quiet_trainer(limit_test_batches=1).test(loaded, datamodule=datamodule)
    assert all(w.is_contiguous(memory_format=CHANNELS_LAST) for w in _convolution_weights(loaded))
