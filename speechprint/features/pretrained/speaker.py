"""``speaker_embedding``: Resemblyzer's 256-d utterance embedding (``resemblyzer/pretrained.pt``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from speechprint.core.errors import ConfigError
from speechprint.features.base import FEATURES, Extractor
from speechprint.features.pretrained.common import WHISPER_SR, MissingExtraError, model_lock

# pip cannot bring resemblyzer with speechprint[pretrained]: its declared dependency webrtcvad
# builds from source (a C compiler). The extra installs webrtcvad-wheels instead, and resemblyzer
# goes in without its declared dependencies: the exact command, since no extra can say it.
RESEMBLYZER_INSTALL = "pip install --no-deps resemblyzer==0.1.4"
RESEMBLYZER_HINT = (
    "speaker_embedding needs resemblyzer, which no extra can install (its declared webrtcvad "
    "needs a C compiler; speechprint[pretrained] brings webrtcvad-wheels instead): run "
    f"pip install 'speechprint[pretrained]' && {RESEMBLYZER_INSTALL}"
)
_voice_encoders: dict[str, Any] = {}


def load_voice_encoder() -> Any:
    """Resemblyzer's ``VoiceEncoder`` on CPU with its bundled weights, once per process."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # in case CTranslate2 is imported later
    try:
        from resemblyzer import VoiceEncoder
    except ImportError as error:
        raise MissingExtraError(RESEMBLYZER_HINT, name="resemblyzer") from error
    with model_lock:
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
