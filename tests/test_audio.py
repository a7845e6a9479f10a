"""Audio decoding on tiny generated files: formats, channels, rates, and every kind of bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechprint.data.audio import AudioError, load_audio, prepare_waveform


def tone(seconds: float = 1.0, rate: int = 16000, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_load_audio_makes_stereo_44k_mono_16k(tmp_path: Path) -> None:
    stereo = np.stack([tone(rate=44100), tone(rate=44100, freq=330)], axis=1)
    sf.write(tmp_path / "s.wav", stereo, 44100)
    wave = load_audio(tmp_path / "s.wav", 16000)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(len(wave) - 16000) <= 2


@pytest.mark.parametrize("fmt", ["MP3", "FLAC", "OGG", "WAV"])
def test_common_formats_decode(tmp_path: Path, fmt: str) -> None:
    if fmt not in sf.available_formats():
        pytest.skip(f"this libsndfile cannot write {fmt}")
    path = tmp_path / f"a.{fmt.lower()}"
    sf.write(path, tone(rate=8000), 8000, format=fmt)
    wave = load_audio(path, 16000)
    # MP3 encoders pad a little at both ends; the length stays about one second.
    assert wave.dtype == np.float32 and abs(len(wave) - 16000) < 2000
    assert np.isfinite(wave).all() and np.abs(wave).max() > 0.1


def test_prepare_waveform_layouts_and_rates() -> None:
    mono = tone()
    assert prepare_waveform(mono, 16000, 16000).shape == (16000,)
    assert np.allclose(prepare_waveform(mono, 16000, 16000), mono)  # same rate: untouched
    assert prepare_waveform(np.stack([mono, mono]), 16000, 8000).shape == (8000,)  # (ch, n)
    assert prepare_waveform(np.stack([mono, mono], 1), 16000, 8000).shape == (8000,)  # (n, ch)
    assert prepare_waveform(mono.astype(np.float64), 16000, 22050).dtype == np.float32


@pytest.mark.parametrize(
    ("wave", "reason"),
    [
        (np.full(16000, np.nan, np.float32), "non-finite"),
        (np.zeros(16000, np.float32), "silent"),
        (np.zeros(0, np.float32), "no audio samples"),
        (tone(0.2), "too short"),
        (np.zeros((100, 200), np.float32) + 0.1, "cannot tell channels"),
        (np.zeros((2, 2, 8000), np.float32), "1-D or 2-D"),
    ],
    ids=["nan", "silent", "empty", "too-short", "ambiguous-2d", "3d"],
)
def test_prepare_waveform_rejects(wave: np.ndarray, reason: str) -> None:
    with pytest.raises(AudioError, match=reason) as caught:
        prepare_waveform(wave, 16000, 16000, source="mic")
    assert caught.value.file == "mic" and str(caught.value).startswith("mic: ")


def test_a_lone_click_is_still_silent() -> None:
    # The peak passes the silence threshold; the RMS shows there is no signal.
    wave = np.zeros(160000, np.float32)
    wave[100] = 1e-3
    with pytest.raises(AudioError, match="silent"):
        prepare_waveform(wave, 16000, 16000)


def test_min_seconds_is_configurable() -> None:
    assert prepare_waveform(tone(0.2), 16000, 16000, min_seconds=0.1).shape == (3200,)


def _write_silent(path: Path) -> None:
    sf.write(path, np.zeros(16000, np.float32), 16000)


def _write_short(path: Path) -> None:
    sf.write(path, tone(0.1), 16000)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p.write_bytes(b""), "empty file"),
        (_write_silent, "silent"),
        (_write_short, "too short"),
        (lambda p: p.write_bytes(b"RIFF\x00\x00garbage" * 3), "cannot decode"),
        (lambda p: None, "file not found"),
    ],
    ids=["zero-byte", "silent", "too-short", "garbage", "missing"],
)
def test_bad_files_name_file_and_reason(
    tmp_path: Path, make: Callable[[Path], None], reason: str
) -> None:
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(AudioError, match=reason) as caught:
        load_audio(path, 16000)
    assert caught.value.file == str(path) and str(path) in str(caught.value)
    assert reason in caught.value.reason


def test_truncated_mp3_is_an_audio_error(tmp_path: Path) -> None:
    if "MP3" not in sf.available_formats():
        pytest.skip("this libsndfile cannot write MP3")
    sf.write(tmp_path / "full.mp3", tone(3.0), 16000, format="MP3")
    truncated = tmp_path / "truncated.mp3"
    truncated.write_bytes((tmp_path / "full.mp3").read_bytes()[:200])
    with pytest.raises(AudioError, match="truncated.mp3") as caught:
        load_audio(truncated, 16000)
    # The reason must not repeat libsndfile's misleading "file does not exist".
    assert "cannot decode" in caught.value.reason and "not exist" not in caught.value.reason


def test_audio_error_is_a_value_error() -> None:
    error = AudioError("a.mp3", "silent")
    assert isinstance(error, ValueError) and str(error) == "a.mp3: silent"
