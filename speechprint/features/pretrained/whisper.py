"""``whisper_encoder``: frames of a Whisper encoder (tiny.en, base, or any CTranslate2 conversion).

The final layer comes from CTranslate2 (int8 by default: fast on CPU). Hidden layers
(``layer: N``) and all layers at once (``layers: weighted``) come from the PyTorch encoder in
``encoder.py``, run in float32 from the same weights. Windows of 30 s are batched, across files
too (``transform_many``), ``WINDOW_BATCH`` at a time.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from speechprint.core.errors import ConfigError
from speechprint.features.base import FEATURES, Extractor
from speechprint.features.logmel import _hann, mel_basis
from speechprint.features.pretrained import weights
from speechprint.features.pretrained.common import (
    HOP,
    WHISPER_SR,
    WINDOW_SAMPLES,
    average_pool,
    encoder_frames,
    import_ctranslate2,
    model_lock,
    stitch_windows,
    window_starts,
)
from speechprint.features.pretrained.encoder import encode_layers

# Whisper's fixed front end (whisper/audio.py): 25 ms Hann frames every 10 ms, 80 Slaney mel bands,
# 30 s windows of 3000 mel frames; the conv stem halves the rate to 50 frames/s.
N_FFT = 400
N_MELS = 80
WINDOW_MEL_FRAMES = WINDOW_SAMPLES // HOP  # 3000
WINDOW_BATCH = 4  # windows encoded per call: batches amortise calls, peak memory stays ~100 MB
DIMS = {"tiny.en": (384, 4), "base": (512, 6)}  # d_model, encoder blocks
COMPUTE_TYPES = ("int8", "int8_float32", "float32")

_whisper_models: dict[tuple[str, str, int], Any] = {}


def load_whisper(model_path: str = "", compute_type: str = "int8", threads: int = 0) -> Any:
    """The ``ctranslate2.models.Whisper`` for these settings, loaded once per process.

    ``model_path`` is a folder with ``model.bin``, or a name (``tiny.en``, ``base``); "" = tiny.en.
    """
    ctranslate2 = import_ctranslate2()
    path = weights.resolve_model_dir(model_path or "tiny.en")
    # 0 = one thread: extraction runs one worker process per core, so more would oversubscribe.
    intra = threads if threads > 0 else 1
    key = (os.path.realpath(path), compute_type, intra)
    with model_lock:
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


def encode_many(
    waves: Sequence[np.ndarray], encode: Callable[[np.ndarray], np.ndarray]
) -> list[np.ndarray]:
    """Stitched frames per wave, the 30 s windows of all waves encoded ``WINDOW_BATCH`` at a time.

    ``encode`` maps log-mels ``(batch, 80, 3000)`` to ``(batch, 1500, ...)`` frames.
    """
    waves = [np.asarray(w, dtype=np.float32).reshape(-1) for w in waves]
    windows = [(i, s) for i, w in enumerate(waves) for s in window_starts(len(w))]
    encoded: list[np.ndarray] = []
    for b in range(0, len(windows), WINDOW_BATCH):
        batch = windows[b : b + WINDOW_BATCH]
        mels = np.stack([whisper_log_mel(waves[i][s : s + WINDOW_SAMPLES]) for i, s in batch])
        encoded.extend(encode(mels))
    per_wave: list[list[tuple[int, np.ndarray]]] = [[] for _ in waves]
    for (i, start), frames in zip(windows, encoded, strict=True):
        per_wave[i].append((start, frames))
    return [stitch_windows(len(w), parts) for w, parts in zip(waves, per_wave, strict=True)]


def parse_layer(layer: int | str, where: str) -> int | str:
    """``"final"`` or a layer index >= 0 (CLI strings such as ``"3"`` become ints)."""
    if isinstance(layer, str) and layer.strip().isdigit():
        layer = int(layer)
    if layer != "final" and not (
        isinstance(layer, int) and not isinstance(layer, bool) and layer >= 0
    ):
        raise ConfigError(
            f"{where}: layer must be 'final' or an index >= 0 (0 = after the convolutions), got {layer!r}"
        )
    return layer


def check_layer(layer: int | str, n_layers: int, where: str) -> int:
    """The index of ``layer`` among ``n_layers + 1`` outputs (``final`` is the last)."""
    if layer == "final":
        return n_layers
    if int(layer) > n_layers:
        raise ConfigError(
            f"{where}: layer {layer} does not exist; this model has layers 0..{n_layers}"
        )
    return int(layer)


@FEATURES.register("whisper_encoder", extra="pretrained")
@dataclass
class WhisperEncoder(Extractor):
    """Whisper encoder frames, ``(ceil(ceil(samples / 320) / frame_stride), d_model)`` float32.

    ``model`` is ``tiny.en`` (384-d, 4 blocks), ``base`` (multilingual, 512-d, 6 blocks) or a
    folder with a CTranslate2-converted Whisper (``model_path`` is the older spelling of that).
    ``layer`` is ``final`` (after the last layer norm, from CTranslate2 at ``compute_type``) or an
    index: 0 = after the convolutions, ``i`` = after block ``i``, the last index = ``final``
    (hidden layers run in PyTorch, float32). ``layers: weighted`` returns every layer side by side,
    ``(frames, (n_layers + 1) * d_model)`` layer-major, for models that learn a softmax-weighted
    sum (SUPERB); it costs ``n_layers + 1`` times the cache of one layer (raise ``frame_stride``).
    ``frame_stride`` average-pools consecutive frames (2 -> 25 frames/s). ``threads`` is intra-op
    threads per process (0 = one); it does not change the output, so it is not in the cache key,
    and neither are ``model``, ``layer``, ``layers`` at their defaults (older keys stay valid).
    """

    version = 1
    kind = "sequence"

    sample_rate: int = WHISPER_SR
    model_path: str = ""
    frame_stride: int = 2
    compute_type: str = "int8"
    threads: int = field(default=0, compare=False)
    model: str = "tiny.en"
    layer: int | str = "final"
    layers: str = ""

    def __post_init__(self) -> None:
        # Validation only (no model loading): bad settings fail when the config is built.
        if self.sample_rate != WHISPER_SR:
            raise ConfigError(f"whisper_encoder needs sample_rate={WHISPER_SR} (Whisper's rate)")
        if self.frame_stride < 1:
            raise ConfigError("frame_stride must be >= 1")
        if self.compute_type not in COMPUTE_TYPES:
            raise ConfigError("compute_type must be one of int8, int8_float32, float32 (CPU)")
        if self.model_path and self.model != "tiny.en":
            raise ConfigError("whisper_encoder: give model or model_path, not both")
        self.layer = parse_layer(self.layer, "whisper_encoder")
        if self.layers not in ("", "weighted"):
            raise ConfigError(
                f"whisper_encoder: layers must be 'weighted' or empty, got {self.layers!r}"
            )
        if self.layers and self.layer != "final":
            raise ConfigError("whisper_encoder: layers: weighted uses every layer; drop layer")

    def params(self) -> dict[str, Any]:
        params = super().params()
        params.pop("threads")
        for name, default in (("model", "tiny.en"), ("layer", "final"), ("layers", "")):
            if params[name] == default:
                params.pop(name)  # today's configurations keep today's cache keys
        return params

    @property
    def model_ref(self) -> str:
        return self.model_path or self.model

    @property
    def uses_torch(self) -> bool:
        return self.layer != "final" or bool(self.layers)

    def transform(self, wave: np.ndarray) -> np.ndarray:
        return self.transform_many([wave])[0]

    def transform_many(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        if self.uses_torch:
            stitched = encode_many(waves, self._encode_torch)
        else:
            ctranslate2 = import_ctranslate2()
            model = load_whisper(self.model_ref, self.compute_type, self.threads)
            encode = lambda mels: np.asarray(model.encode(ctranslate2.StorageView.from_array(mels)))  # noqa: E731
            stitched = encode_many(waves, encode)
        out = []
        for frames in stitched:
            pooled = average_pool(frames, self.frame_stride)
            out.append(pooled.reshape(len(pooled), -1).astype(np.float32, copy=False))
        return out

    def _encode_torch(self, mels: np.ndarray) -> np.ndarray:
        hidden = encode_layers(weights.resolve_model_dir(self.model_ref), mels)  # (B, T, L+1, d)
        if self.layers:
            return hidden
        return hidden[:, :, check_layer(self.layer, hidden.shape[2] - 1, "whisper_encoder")]

    def layer_groups(self) -> int | None:
        if not self.layers:
            return 1
        if self.model_path or self.model not in DIMS:
            return None
        return DIMS[self.model][1] + 1

    def output_dim(self) -> int | None:
        if self.model_path or self.model not in DIMS:
            return None
        dim, blocks = DIMS[self.model]
        return dim * (blocks + 1) if self.layers else dim

    def n_frames(self, n_samples: int) -> int:
        return math.ceil(encoder_frames(n_samples) / self.frame_stride)
