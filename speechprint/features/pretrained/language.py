"""``whisper_language``: what language Whisper hears, as 99 log-probabilities per recording.

The first language a speaker learned often shows through their English (an Arabic speaker's
English may score 0.28 English, 0.20 Arabic). CTranslate2's ``detect_language`` scores each 30 s
window; windows are averaged in probability space, weighted by the real audio each holds, then
renormalised and logged, so ``exp(vector)`` sums to 1. Only multilingual models have a detector.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from speechprint.core.errors import ConfigError
from speechprint.features.base import FEATURES, Extractor
from speechprint.features.pretrained import weights
from speechprint.features.pretrained.common import (
    WHISPER_SR,
    WINDOW_SAMPLES,
    import_ctranslate2,
    model_lock,
    window_starts,
)
from speechprint.features.pretrained.whisper import (
    COMPUTE_TYPES,
    WINDOW_BATCH,
    load_whisper,
    whisper_log_mel,
)

N_LANGUAGES = 99
_languages: dict[str, list[str]] = {}


def language_tokens(model_dir: str) -> list[str]:
    """The model's language tokens (``<|en|>``, ``<|zh|>``, ...) in its ``lang_ids`` order."""
    key = os.path.realpath(model_dir)
    with model_lock:
        if key not in _languages:
            with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as handle:
                lang_ids = json.load(handle).get("lang_ids") or []
            with open(os.path.join(model_dir, "vocabulary.txt"), encoding="utf-8") as handle:
                vocabulary = handle.read().split("\n")
            _languages[key] = [vocabulary[i] for i in lang_ids]
        return _languages[key]


@FEATURES.register("whisper_language", extra="pretrained")
@dataclass
class WhisperLanguage(Extractor):
    """Spoken-language log-probabilities, ``(99,)`` float32 in the model's language order.

    ``model`` is ``base`` (the multilingual Whisper) or a folder with a multilingual
    CTranslate2 Whisper; ``threads`` is not part of the cache key.
    """

    version = 1
    kind = "pooled"

    sample_rate: int = WHISPER_SR
    model: str = "base"
    compute_type: str = "int8"
    threads: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if self.sample_rate != WHISPER_SR:
            raise ConfigError(f"whisper_language needs sample_rate={WHISPER_SR} (Whisper's rate)")
        if self.model.endswith(".en"):
            raise ConfigError(f"whisper_language: {self.model} is English-only; use model: base")
        if self.compute_type not in COMPUTE_TYPES:
            raise ConfigError("compute_type must be one of int8, int8_float32, float32 (CPU)")

    def params(self) -> dict[str, Any]:
        params = super().params()
        params.pop("threads")
        return params

    def languages(self) -> list[str]:
        """Language codes of the output's entries (``en``, ``zh``, ...)."""
        tokens = language_tokens(weights.resolve_model_dir(self.model))
        return [t.strip("<|>") for t in tokens]

    def transform(self, wave: np.ndarray) -> np.ndarray:
        return self.transform_many([wave])[0]

    def transform_many(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        ctranslate2 = import_ctranslate2()
        model_dir = weights.resolve_model_dir(self.model)
        model = load_whisper(model_dir, self.compute_type, self.threads)
        if not model.is_multilingual:
            raise ConfigError(f"whisper_language: {self.model!r} is not a multilingual Whisper")
        order = {token: i for i, token in enumerate(language_tokens(model_dir))}
        waves = [np.asarray(w, dtype=np.float32).reshape(-1) for w in waves]
        windows = [(i, s) for i, w in enumerate(waves) for s in window_starts(len(w))]
        sums = np.zeros((len(waves), len(order)), dtype=np.float64)
        for b in range(0, len(windows), WINDOW_BATCH):
            batch = windows[b : b + WINDOW_BATCH]
            mels = np.stack([whisper_log_mel(waves[i][s : s + WINDOW_SAMPLES]) for i, s in batch])
            scored = model.detect_language(ctranslate2.StorageView.from_array(mels))
            for (i, start), pairs in zip(batch, scored, strict=True):
                weight = max(1, min(WINDOW_SAMPLES, len(waves[i]) - start))
                for token, probability in pairs:
                    sums[i, order[token]] += weight * probability
        probabilities = sums / sums.sum(axis=1, keepdims=True)
        return list(np.log(np.maximum(probabilities, 1e-12)).astype(np.float32))

    def output_dim(self) -> int | None:
        return N_LANGUAGES
