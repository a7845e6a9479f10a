"""What every pretrained extractor shares: the missing-extra error, the model lock, 30 s windows.

Whisper and hama both take at most 30 s of 16 kHz audio per call and emit 50 frames per second,
so long recordings are cut into windows (``window_starts``) whose frames are stitched back
(``stitch_windows``) and optionally average-pooled (``average_pool``).
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterable
from typing import Any

import numpy as np

from speechprint.core.errors import EXTRA_HINT, MissingExtraError
from speechprint.features.frames import HOP, SAMPLES_PER_ENCODER_FRAME, WHISPER_SR, WINDOW_SAMPLES

__all__ = [
    "EXTRA_HINT",
    "HOP",
    "SAMPLES_PER_ENCODER_FRAME",
    "WHISPER_SR",
    "WINDOW_SAMPLES",
    "MissingExtraError",
    "average_pool",
    "encoder_frames",
    "import_ctranslate2",
    "model_lock",
    "stitch_windows",
    "window_starts",
]

# One lock for every lazily loaded model: loads are rare, and two threads must not load twice.
model_lock = threading.Lock()


def import_ctranslate2() -> Any:
    # torch and CTranslate2 both use OpenMP; with the default ACTIVE wait policy the idle pool of
    # one spins and starves the other (torch ~50x slower in the same process). Must be set before
    # the first OpenMP runtime starts, so before this import.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import ctranslate2
    except ImportError as error:
        raise MissingExtraError("whisper_encoder needs ctranslate2", name="ctranslate2") from error
    return ctranslate2


def window_starts(n_samples: int) -> list[int]:
    """Start samples of the 30 s windows covering ``n_samples``.

    Windows are back to back, except that a final partial window is moved back to end at the
    audio's end (start kept on the 20 ms encoder grid): its frames then see up to 30 s of real
    context instead of mostly padding, at the same cost of one encoder pass.
    """
    if n_samples <= WINDOW_SAMPLES:
        return [0]
    starts = list(range(0, n_samples, WINDOW_SAMPLES))
    last = n_samples - WINDOW_SAMPLES
    last -= last % SAMPLES_PER_ENCODER_FRAME
    starts[-1] = max(last, starts[-2])
    return starts


def encoder_frames(n_samples: int) -> int:
    """Encoder frames (50/s) that hold real audio: ``ceil(n_samples / 320)``, at least 1."""
    return max(1, math.ceil(n_samples / SAMPLES_PER_ENCODER_FRAME))


def stitch_windows(n_samples: int, windows: Iterable[tuple[int, np.ndarray]]) -> np.ndarray:
    """Concatenate per-window frames (50/s) of ``window_starts(n_samples)`` into one sequence.

    Each ``(start_sample, frames)`` contributes only frames not already covered by an earlier
    window and inside the real audio (padding frames of the last window are dropped). Frames may
    have extra trailing axes (layers): only the first axis is time.
    """
    total = encoder_frames(n_samples)
    parts: list[np.ndarray] = []
    covered = 0  # frames already taken, in absolute 20 ms units
    for start, out in windows:
        offset = start // SAMPLES_PER_ENCODER_FRAME
        stop = min(total - offset, out.shape[0])
        parts.append(out[covered - offset : stop])
        covered = offset + stop
    if covered < total:
        # A last window kept on the 20 ms grid ends up to 319 samples early: its final frame
        # stands for that sliver, so the count matches encoder_frames (and n_frames) exactly.
        parts.append(np.repeat(parts[-1][-1:], total - covered, axis=0))
    return np.concatenate(parts).astype(np.float32, copy=False)


def average_pool(frames: np.ndarray, stride: int) -> np.ndarray:
    """Mean over consecutive groups of ``stride`` frames (the last group may be shorter).

    >>> average_pool(np.arange(5, dtype=np.float32)[:, None], 2).ravel().tolist()
    [0.5, 2.5, 4.0]
    """
    if stride <= 1 or len(frames) == 0:
        return frames
    n = len(frames)
    full = n // stride
    pooled = frames[: full * stride].reshape(full, stride, *frames.shape[1:]).mean(axis=1)
    if n % stride:
        pooled = np.concatenate([pooled, frames[full * stride :].mean(axis=0, keepdims=True)])
    return pooled
