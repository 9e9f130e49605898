"""Batch-tensor transforms: per-channel normalisation and CIFAR-style augmentation."""

from __future__ import annotations

import torch


def channel_stats(images: torch.Tensor, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation of uint8 images [N, C, H, W], on the [0, 1] scale.

    `mean_c = Σx / n`, `std_c = sqrt(Σx² / n − mean_c²)` over all pixels of channel c, accumulated
    in float64 over chunks of images to bound memory.
    """
    channels = images.shape[1]
    total = torch.zeros(channels, dtype=torch.float64)
    total_sq = torch.zeros(channels, dtype=torch.float64)
    for start in range(0, len(images), chunk):
        block = images[start : start + chunk].to(torch.float64) / 255.0
        total += block.sum(dim=(0, 2, 3))
        total_sq += block.square().sum(dim=(0, 2, 3))
    count = images.numel() / channels
    mean = total / count
    std = (total_sq / count - mean.square()).clamp_min(1e-12).sqrt()
    return mean.float(), std.float()


def normalize(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 [B, C, H, W] -> float32 `(x / 255 − mean_c) / std_c`."""
    scale = (1.0 / (255.0 * std)).to(images.device).view(1, -1, 1, 1)
    shift = (mean / std).to(images.device).view(1, -1, 1, 1)
    return images.float().mul_(scale).sub_(shift)


def random_crop_flip(images: torch.Tensor, padding: int = 4) -> torch.Tensor:
    """Random crop of the original size from the zero-padded image, then a horizontal flip with
    probability 1/2, drawn independently per image (the standard CIFAR augmentation)."""
    batch, channels, height, width = images.shape
    device = images.device
    padded = torch.nn.functional.pad(images, (padding, padding, padding, padding))
    top = torch.randint(0, 2 * padding + 1, (batch, 1), device=device)
    left = torch.randint(0, 2 * padding + 1, (batch, 1), device=device)
    rows = (top + torch.arange(height, device=device)).view(batch, 1, height, 1)
    cols = (left + torch.arange(width, device=device)).view(batch, 1, 1, width)
    flip = torch.rand(batch, device=device) < 0.5
    cols = torch.where(flip.view(batch, 1, 1, 1), cols.flip(-1), cols)
    image_index = torch.arange(batch, device=device).view(batch, 1, 1, 1)
    channel_index = torch.arange(channels, device=device).view(1, channels, 1, 1)
    return padded[image_index, channel_index, rows, cols]
