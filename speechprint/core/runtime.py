"""Where and how a run computes: the device, the seeds, the share of CPU threads."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from speechprint.core.errors import ConfigError


def resolve_device(spec: str) -> torch.device:
    """``auto`` -> CUDA when available, else MPS when available, else CPU; an explicit device
    that this machine lacks is a ``ConfigError`` (a run never silently falls back to the CPU)."""
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(spec)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"train.device: {spec!r} asked for, but CUDA is not available here")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"train.device: {spec!r} asked for, but this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)"
            )
    elif device.type == "mps" and not _mps_available():
        raise ConfigError(f"train.device: {spec!r} asked for, but MPS is not available here")
    return device


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds CUDA too


def torch_threads() -> int:
    """Intra-op threads for training: all cores, or the share ``SPEECHPRINT_TORCH_THREADS`` gives
    (set by ``study run --workers N`` so that N workers do not oversubscribe the cores)."""
    share = os.environ.get("SPEECHPRINT_TORCH_THREADS", "")
    return max(1, int(share) if share.isdigit() else os.cpu_count() or 1)
