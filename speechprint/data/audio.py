"""Audio decoding: any common format and rate in, mono float32 at the rate an extractor asks for.

Bad recordings are normal in real archives: a corrupt, empty, silent or too-short file raises
``AudioError`` naming the file and the reason, so callers can report it, skip it and go on.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from speechprint.core.errors import DataError
from speechprint.data.decoder_notes import decoder_notes_dropped

# Below this peak level a recording holds no speech (MP3 noise floors sit well above it).
SILENCE_PEAK = 1e-4
# A lone click can pass the peak test; an RMS this low (-100 dBFS) is still no speech.
SILENCE_RMS = 1e-5
MAX_CHANNELS = 8


class AudioError(DataError):
    """A recording that cannot be used, with the file and the reason (still a ValueError)."""

    def __init__(self, file: str | os.PathLike[str], reason: str) -> None:
        self.file = str(file)
        self.reason = reason
        super().__init__(f"{self.file}: {reason}")


def decode_failure(error: BaseException) -> str:
    """A readable reason for a decoder error on a file known to exist and be non-empty."""
    detail = getattr(error, "error_string", "") or str(error)
    # libsndfile says "does not exist or is not a regular file" for a truncated MP3 it cannot
    # parse; the file exists (checked before decoding), so that text would only mislead.
    if "does not exist" in detail or not detail.strip():
        detail = "no decodable audio frames"
    return f"cannot decode audio: corrupt, truncated or unsupported format ({detail.strip(' .')})"


def _decode(path: Path) -> tuple[np.ndarray, int]:
    """Decode with libsndfile (mp3, wav, flac, ogg); librosa's fallbacks for anything else."""
    with decoder_notes_dropped():  # a damaged MP3's notes: an AudioError says it once
        return _decode_noisily(path)


def _decode_noisily(path: Path) -> tuple[np.ndarray, int]:
    try:
        wave, rate = sf.read(str(path), dtype="float32", always_2d=True)
        return wave, int(rate)
    except (sf.LibsndfileError, RuntimeError, TypeError) as first_error:
        try:
            import warnings

            import librosa

            with warnings.catch_warnings():  # librosa warns before its audioread fallback
                warnings.simplefilter("ignore")
                wave, rate = librosa.load(str(path), sr=None, mono=False)
        except Exception:  # noqa: BLE001 - report libsndfile's message, the more useful one
            raise AudioError(path, decode_failure(first_error)) from None
        wave = np.atleast_2d(wave).T  # librosa gives (channels, samples)
        return wave.astype(np.float32), int(rate)


def load_audio(
    path: str | os.PathLike[str], sample_rate: int, *, min_seconds: float = 0.5
) -> np.ndarray:
    """Decode ``path`` to mono float32 at ``sample_rate``; raise ``AudioError`` if unusable."""
    path = Path(path)
    if not path.exists():
        raise AudioError(path, "file not found")
    if path.stat().st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    wave, rate = _decode(path)
    return prepare_waveform(wave, rate, sample_rate, source=str(path), min_seconds=min_seconds)


def prepare_waveform(
    wave: np.ndarray,
    orig_sr: int,
    sample_rate: int,
    *,
    source: str = "<waveform>",
    min_seconds: float = 0.5,
) -> np.ndarray:
    """Mono, resampled, checked: the one path every decoded or in-memory waveform takes.

    Accepts ``(n,)``, ``(n, channels)`` or ``(channels, n)`` arrays.

    >>> prepare_waveform(np.sin(np.arange(8000) / 5.0), 8000, 16000).shape
    (16000,)
    """
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim == 2:
        # Channels are the short axis (at most a handful); average them to mono.
        if min(wave.shape) > MAX_CHANNELS:
            raise AudioError(
                source,
                f"cannot tell channels from samples in shape {wave.shape} "
                f"(expected (n,), (n, channels) or (channels, n) with channels <= {MAX_CHANNELS})",
            )
        channel_axis = 1 if wave.shape[1] <= MAX_CHANNELS and wave.shape[1] < wave.shape[0] else 0
        wave = wave.mean(axis=channel_axis)
    elif wave.ndim != 1:
        raise AudioError(source, f"expected a 1-D or 2-D waveform, got shape {wave.shape}")
    if orig_sr <= 0:
        raise AudioError(source, f"invalid sample rate {orig_sr}")
    if wave.size == 0:
        raise AudioError(source, "no audio samples (empty or truncated)")
    if not np.all(np.isfinite(wave)):
        raise AudioError(source, "non-finite samples (NaN or inf)")
    seconds = wave.size / orig_sr
    if seconds < min_seconds:
        raise AudioError(source, f"too short ({seconds:.2f} s < {min_seconds} s)")
    if (
        float(np.max(np.abs(wave))) < SILENCE_PEAK
        or float(np.sqrt(np.mean(np.square(wave, dtype=np.float64)))) < SILENCE_RMS
    ):
        raise AudioError(source, "silent (no signal above the noise floor)")
    if orig_sr != sample_rate:
        # soxr's medium quality is transparent for speech features and ~2x faster than HQ. This is
        # what librosa.resample(res_type="soxr_mq") runs, without importing librosa in workers.
        wave = soxr.resample(wave, orig_sr, sample_rate, quality="MQ")
    return np.ascontiguousarray(wave, dtype=np.float32)
