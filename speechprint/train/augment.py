"""Training-time augmentation of feature sequences: random crops, speed perturbation, SpecAugment
masks and Gaussian noise. Everything draws from the run's own generators on the CPU, so a seed
gives the same batches on every device."""

from __future__ import annotations

import numpy as np
import torch

from speechprint.features.base import pool_statistics
from speechprint.inference.classifier import pad_batch
from speechprint.train.config import TrainConfig


def random_crops(
    sequences: list[np.ndarray], max_frames: int, rng: np.random.Generator, speed: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """One random window of at most ``max_frames`` per sequence, padded into one tensor."""
    crops = []
    for sequence in sequences:
        if speed > 0:
            sequence = speed_perturb(sequence, rng, speed)
        start = int(rng.integers(0, max(1, len(sequence) - max_frames + 1)))
        crops.append(sequence[start : start + max_frames])
    return pad_batch(crops)


def crop_statistics(
    sequences: list[np.ndarray], crop_frames: int, crops: int, rng: np.random.Generator
) -> np.ndarray:
    """``(len(sequences) * crops, 2 * D)``: mean + std statistics of ``crops`` random windows of
    ``crop_frames`` per sequence, recording-major (rows ``i * crops .. i * crops + crops - 1``
    are sequence ``i``'s); a sequence shorter than a crop gives its whole length each time."""
    rows = []
    for sequence in sequences:
        starts = rng.integers(0, max(1, len(sequence) - crop_frames + 1), size=crops)
        rows += [pool_statistics(sequence[s : s + crop_frames]) for s in starts]
    return np.stack(rows)


def speed_perturb(sequence: np.ndarray, rng: np.random.Generator, speed: float) -> np.ndarray:
    """Resample the frame axis by a random factor in ``[1 - speed, 1 + speed]``."""
    factor = rng.uniform(1 - speed, 1 + speed)
    n = max(2, int(round(len(sequence) / factor)))
    index = np.minimum((np.arange(n) * factor).astype(int), len(sequence) - 1)
    return sequence[index]


def spec_augment(
    x: torch.Tensor, lengths: torch.Tensor, train: TrainConfig, generator: torch.Generator
) -> torch.Tensor:
    """SpecAugment-style time and feature masks plus Gaussian noise, vectorised over the batch."""
    batch, frames, dims = x.shape
    keep = torch.ones_like(x, dtype=torch.bool)
    time_index = torch.arange(frames)[None, :]
    dim_index = torch.arange(dims)[None, :]
    for _ in range(train.time_masks):
        width = torch.randint(0, train.time_mask_width + 1, (batch, 1), generator=generator)
        start = (
            torch.rand((batch, 1), generator=generator) * (lengths[:, None] - width).clamp_min(1)
        ).long()
        keep &= ~((time_index >= start) & (time_index < start + width))[:, :, None]
    for _ in range(train.freq_masks):
        width = torch.randint(0, train.freq_mask_width + 1, (batch, 1), generator=generator)
        start = (torch.rand((batch, 1), generator=generator) * max(dims - 1, 1)).long()
        keep &= ~((dim_index >= start) & (dim_index < start + width))[:, None, :]
    return add_noise(x * keep, train.noise_std, generator)


def add_noise(x: torch.Tensor, std: float, generator: torch.Generator) -> torch.Tensor:
    """Gaussian noise of ``std`` (normalised features: a fraction of one standard deviation)."""
    if std <= 0:
        return x
    return x + std * torch.randn(x.shape, generator=generator)
