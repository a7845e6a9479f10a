"""Log-mel spectrograms, and the float32 short-time spectral helpers the MFCC extractors share.

The helpers reproduce ``librosa.feature.melspectrogram`` + ``power_to_db`` (periodic Hann window,
centred frames with zero padding, Slaney mel filters, ``top_db=80``) to float32 precision, but
frame the signal in blocks and use a BLAS matrix product for the mel projection: about 1.5x faster
than librosa's float64/einsum path for the same numbers (``tests/test_features.py`` checks the
match), which matters when a thousand files are extracted on two cores.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from speechprint.core.errors import ConfigError
from speechprint.features.base import FEATURES, Extractor

_BLOCK = 256  # frames per FFT block: keeps the windowed block in cache, bounds peak memory
TOP_DB = 80.0
AMIN = 1e-10


@lru_cache(maxsize=32)
def _hann(n_fft: int) -> np.ndarray:
    # Periodic Hann, as scipy.signal.get_window("hann", n, fftbins=True) and librosa use.
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)


@lru_cache(maxsize=32)
def mel_basis(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None
) -> np.ndarray:
    """Slaney-normalised mel filters, transposed to ``(n_fft // 2 + 1, n_mels)`` float32."""
    import librosa.filters  # lazy: importing it costs ~1 s, and `features list` never needs it

    basis = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    return np.ascontiguousarray(basis.T, dtype=np.float32)


def check_band(sample_rate: int, fmax: float | None, n_mels: int, n_fft: int) -> None:
    """Reject settings that would silently produce empty or aliased mel bands."""
    if sample_rate <= 0 or n_fft <= 0 or n_mels <= 0:
        raise ConfigError("sample_rate, n_fft and n_mels must be positive")
    if fmax is not None and not 0 < fmax <= sample_rate / 2:
        raise ConfigError(f"fmax={fmax} must be in (0, sample_rate/2 = {sample_rate / 2}]")


def log_mel_spectrogram(
    wave: np.ndarray,
    sample_rate: int,
    *,
    n_fft: int,
    hop_length: int,
    n_mels: int,
    fmax: float | None = None,
) -> np.ndarray:
    """Log-mel power in dB, ``(frames, n_mels)`` float32, ``frames = 1 + len(wave) // hop``.

    >>> log_mel_spectrogram(np.zeros(1600, np.float32), 16000, n_fft=512, hop_length=160,
    ...                     n_mels=40).shape
    (11, 40)
    """
    check_band(sample_rate, fmax, n_mels, n_fft)
    wave = np.ascontiguousarray(wave, dtype=np.float32).reshape(-1)
    import scipy.fft  # lazy for the same reason as librosa

    padded = np.pad(wave, n_fft // 2)  # librosa's center=True, pad_mode="constant"
    if len(padded) < n_fft:
        padded = np.pad(padded, (0, n_fft - len(padded)))
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop_length]
    frames = frames[: 1 + len(wave) // hop_length]
    window = _hann(n_fft)
    basis = mel_basis(sample_rate, n_fft, n_mels, 0.0, fmax)
    mel = np.empty((len(frames), n_mels), dtype=np.float32)
    for start in range(0, len(frames), _BLOCK):
        spectrum = scipy.fft.rfft(frames[start : start + _BLOCK] * window, axis=1)
        power = spectrum.real**2 + spectrum.imag**2
        mel[start : start + _BLOCK] = power @ basis
    db = 10.0 * np.log10(np.maximum(mel, AMIN, out=mel), out=mel)
    return np.maximum(db, db.max() - TOP_DB, out=db)


@FEATURES.register("logmel")
@dataclass
class LogMel(Extractor):
    """Log-mel spectrogram frames for convolutional models: ``(frames, n_mels)``.

    25 ms-class frames every 10 ms at 16 kHz; ``fmax`` defaults to 4 kHz because the archive is
    8 kHz telephone audio (nothing above 4 kHz), so all mel bands carry signal.

    >>> LogMel().transform(np.zeros(16000, np.float32)).shape
    (101, 64)
    """

    version = 1
    kind = "sequence"

    sample_rate: int = 16000
    n_mels: int = 64
    n_fft: int = 512
    hop_length: int = 160
    fmax: float = 4000.0

    def transform(self, wave: np.ndarray) -> np.ndarray:
        return log_mel_spectrogram(
            wave,
            self.sample_rate,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            n_mels=self.n_mels,
            fmax=self.fmax,
        )

    def output_dim(self) -> int | None:
        return self.n_mels
