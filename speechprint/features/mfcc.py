"""MFCC extractors: the notebook's pooled mean, frame sequences, and MFCC + deltas.

All three share one float32 pipeline (``logmel.log_mel_spectrogram`` then an orthonormal DCT-II),
numerically the same as ``librosa.feature.mfcc`` with the same parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from speechprint.core.errors import ConfigError
from speechprint.features.base import FEATURES, Extractor
from speechprint.features.logmel import log_mel_spectrogram

DELTA_WIDTH = 9  # librosa.feature.delta's default regression window


def mfcc_frames(
    wave: np.ndarray,
    sample_rate: int,
    *,
    n_mfcc: int,
    n_fft: int,
    hop_length: int,
    n_mels: int,
    fmax: float | None = None,
) -> np.ndarray:
    """MFCC frames ``(frames, n_mfcc)`` float32 (``librosa.feature.mfcc(...).T``).

    >>> mfcc_frames(np.zeros(1600, np.float32), 16000, n_mfcc=13, n_fft=512, hop_length=160,
    ...             n_mels=40).shape
    (11, 13)
    """
    if not 0 < n_mfcc <= n_mels:
        raise ConfigError(f"n_mfcc={n_mfcc} must be in [1, n_mels={n_mels}]")
    import scipy.fft

    log_mel = log_mel_spectrogram(
        wave, sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, fmax=fmax
    )
    return scipy.fft.dct(log_mel, type=2, norm="ortho", axis=1)[:, :n_mfcc].astype(np.float32)


def deltas(frames: np.ndarray, order: int) -> np.ndarray:
    """Savitzky-Golay derivative over time (``librosa.feature.delta`` along axis 0).

    The window shrinks for very short inputs instead of failing, so any decodable file works.
    """
    import scipy.signal

    n = len(frames)
    width = min(DELTA_WIDTH, n if n % 2 else n - 1)
    if width < 3 or width <= order:
        return np.zeros_like(frames)
    return scipy.signal.savgol_filter(
        frames, width, polyorder=order, deriv=order, axis=0, mode="interp"
    ).astype(np.float32)


@FEATURES.register("mfcc_mean")
@dataclass
class MfccMean(Extractor):
    """The original notebook's feature: ``n_mfcc`` MFCCs averaged over time, ``(n_mfcc,)``.

    Frame settings are librosa's defaults (what the notebook used); with ``sample_rate=22050`` this
    reproduces the notebook's vectors. The default 16 kHz covers the archive's 8 kHz telephone
    audio fully with fewer samples to process.

    >>> MfccMean().transform(np.random.default_rng(0).normal(size=16000).astype(np.float32)).shape
    (13,)
    """

    version = 1
    kind = "pooled"

    sample_rate: int = 16000
    n_mfcc: int = 13
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128

    def transform(self, wave: np.ndarray) -> np.ndarray:
        frames = mfcc_frames(
            wave,
            self.sample_rate,
            n_mfcc=self.n_mfcc,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            n_mels=self.n_mels,
        )
        return frames.mean(axis=0, dtype=np.float64).astype(np.float32)

    def output_dim(self) -> int | None:
        return self.n_mfcc


@FEATURES.register("mfcc_seq")
@dataclass
class MfccSeq(Extractor):
    """MFCC frame sequences, ``(frames, n_mfcc)``, full length (the trainer crops or pads).

    Speech framing (32 ms windows every 10 ms at 16 kHz), mel bands up to 4 kHz: the telephone band.

    >>> MfccSeq().transform(np.zeros(16000, np.float32)).shape
    (101, 13)
    """

    version = 1
    kind = "sequence"

    sample_rate: int = 16000
    n_mfcc: int = 13
    n_fft: int = 512
    hop_length: int = 160
    n_mels: int = 40
    fmax: float = 4000.0

    def transform(self, wave: np.ndarray) -> np.ndarray:
        return mfcc_frames(
            wave,
            self.sample_rate,
            n_mfcc=self.n_mfcc,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            n_mels=self.n_mels,
            fmax=self.fmax,
        )

    def output_dim(self) -> int | None:
        return self.n_mfcc


@FEATURES.register("mfcc_deltas")
@dataclass
class MfccDeltas(MfccSeq):
    """MFCC + delta + delta-delta frames, ``(frames, 3 * n_mfcc)``; ``mfcc_seq``'s framing.

    One cached sequence serves both uses: sequence models read it as is, and pooled models get
    its statistics (mean and std per coefficient, ``(6 * n_mfcc,)``) from
    ``base.pool_statistics`` at training time, so there is no separate pooled variant to cache.

    >>> MfccDeltas().transform(np.zeros(16000, np.float32)).shape
    (101, 60)
    """

    version = 1
    kind = "sequence"

    n_mfcc: int = 20

    def transform(self, wave: np.ndarray) -> np.ndarray:
        base = super().transform(wave)
        return np.concatenate([base, deltas(base, 1), deltas(base, 2)], axis=1)

    def output_dim(self) -> int | None:
        return 3 * self.n_mfcc
