"""Tensor batch iteration and the batch transforms (normalisation, crop + flip)."""

from __future__ import annotations

import torch

from imbloss.data.batches import ShuffleSampler, TensorBatches
from imbloss.data.transforms import channel_stats, normalize, random_crop_flip


def _batches(count: int = 23, batch_size: int = 5, seed: int = 0) -> TensorBatches:
    images = torch.arange(count, dtype=torch.uint8).view(count, 1, 1, 1)
    return TensorBatches(images, torch.arange(count), batch_size, ShuffleSampler(count, seed))


def _epoch(batches: TensorBatches, epoch: int | None = None) -> list[int]:
    if epoch is not None:
        batches.set_epoch(epoch)
    return [int(t) for _, targets in batches for t in targets]


def test_len_and_last_batch_size():
    batches = _batches()
    sizes = [len(targets) for _, targets in batches]
    assert len(batches) == 5
    assert sizes == [5, 5, 5, 5, 3]


def test_each_epoch_visits_every_sample_once_in_a_new_order():
    batches = _batches()
    first, second = _epoch(batches, 0), _epoch(batches, 1)
    assert sorted(first) == sorted(second) == list(range(23))
    assert first != second


def test_shuffle_is_reproducible_from_the_seed_and_the_epoch_alone():
    assert _epoch(_batches(seed=1), 0) == _epoch(_batches(seed=1), 0)
    assert _epoch(_batches(seed=1), 0) != _epoch(_batches(seed=2), 0)
    replayed = _batches(seed=1)
    later = _epoch(replayed, 3)
    for epoch in range(4):  # epoch 3 is the same whether or not epochs 0-2 were drawn before it
        _epoch(replayed, epoch)
    assert _epoch(_batches(seed=1), 3) == later == _epoch(replayed, 3)


def test_index_batches_are_the_positions_of_the_yielded_batches():
    batches = _batches()
    batches.set_epoch(2)
    positions = torch.cat(list(batches.index_batches()))
    assert torch.equal(positions, torch.tensor(_epoch(batches)))


def test_images_stay_paired_with_targets():
    for images, targets in _batches():
        assert torch.equal(images.view(-1).long(), targets)


def test_unshuffled_batches_keep_order():
    batches = TensorBatches(torch.zeros(7, 1, 1, 1), torch.arange(7), 3)
    assert _epoch(batches) == list(range(7))


def test_channel_stats_and_normalize():
    images = torch.tensor([0, 255, 51, 51], dtype=torch.uint8).view(1, 2, 2, 1)
    mean, std = channel_stats(images, chunk=1)
    # channel 0 = {0, 1}: mean 0.5, std 0.5; channel 1 = {0.2, 0.2}: mean 0.2, std ~0
    assert torch.allclose(mean, torch.tensor([0.5, 0.2]))
    assert abs(std[0].item() - 0.5) < 1e-6
    normalised = normalize(images, torch.tensor([0.5, 0.2]), torch.tensor([0.5, 0.1]))
    expected = torch.tensor([-1.0, 1.0, 0.0, 0.0]).view(1, 2, 2, 1)
    assert normalised.dtype == torch.float32
    assert torch.allclose(normalised, expected, atol=1e-6)


def test_random_crop_flip_returns_a_window_of_the_padded_image():
    torch.manual_seed(0)
    images = torch.randint(1, 256, (64, 3, 8, 8), dtype=torch.uint8)
    padded = torch.nn.functional.pad(images, (4, 4, 4, 4))
    out = random_crop_flip(images)
    assert out.shape == images.shape and out.dtype == torch.uint8
    offsets, flips = set(), 0
    for k in range(len(images)):
        windows = {
            (top, left, flip)
            for top in range(9)
            for left in range(9)
            for flip in (False, True)
            if torch.equal(
                out[k],
                padded[k, :, top : top + 8, left : left + 8].flip(-1)
                if flip
                else padded[k, :, top : top + 8, left : left + 8],
            )
        }
        assert len(windows) == 1
        top, left, flip = windows.pop()
        offsets.add((top, left))
        flips += flip
    assert len(offsets) > 20  # offsets vary per image
    assert 10 < flips < 54  # about half the images are flipped
