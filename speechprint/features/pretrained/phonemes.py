"""``phoneme_posteriors``: frame log-posteriors over 191 IPA phonemes of hama's CTC recogniser.

Weights in ``hama/assets/asr_waveform.hama``: which sounds a speaker realises where, the phonetic
evidence of accent that acoustic encoders mix with voice and channel.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from speechprint.core.errors import ConfigError
from speechprint.features.base import FEATURES, Extractor
from speechprint.features.pretrained.common import (
    WHISPER_SR,
    WINDOW_SAMPLES,
    MissingExtraError,
    average_pool,
    encoder_frames,
    model_lock,
    stitch_windows,
    window_starts,
)

_phoneme_recognisers: dict[str, Any] = {}


def load_phoneme_recogniser() -> Any:
    """hama's ``ASRModel`` (CPU, single-threaded Zig engine) with its bundled weights, once per process."""
    try:
        from hama.asr import ASRModel
    except ImportError as error:
        raise MissingExtraError("phoneme_posteriors needs hama", name="hama") from error
    with model_lock:
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
