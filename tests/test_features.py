"""Extractors: documented shapes, float32 and finite output, agreement with librosa, and the CLI."""

from __future__ import annotations

import doctest
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from speechprint.features import FEATURES, logmel, make_extractor, mfcc, pool_statistics
from speechprint.features.pretrained import MissingExtraError

EXPECTED = {"mfcc_mean", "mfcc_seq", "mfcc_deltas", "logmel"}


def _wave(sample_rate: int, seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    noise = np.random.default_rng(seed).normal(scale=0.05, size=t.size)
    # Energy only below 3.3 kHz, like the archive's telephone audio.
    tones = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 1250 * t)
    return (tones + noise).astype(np.float32)


def test_all_extractors_registered() -> None:
    assert EXPECTED <= set(FEATURES.names())


@pytest.mark.parametrize("name", sorted(FEATURES.names()))
def test_documented_shape_float32_finite(name: str, require_pretrained: Any) -> None:
    extractor = make_extractor(name)
    wave = _wave(extractor.sample_rate, seconds=1.3)
    try:
        out = extractor.transform(wave)
    except MissingExtraError as error:  # only extractors of the [pretrained] extra raise it
        require_pretrained.missing(None, error)
    assert out.dtype == np.float32
    assert np.all(np.isfinite(out))
    dim = extractor.output_dim()
    if extractor.kind == "pooled":
        assert out.shape == (dim,)
    else:
        assert out.shape == (extractor.n_frames(len(wave)), dim)
    assert extractor.id == f"{name}.v{extractor.version}"


def test_docstring_examples() -> None:
    for module in (logmel, mfcc):
        assert doctest.testmod(module).failed == 0


def test_mfcc_matches_librosa() -> None:
    librosa = pytest.importorskip("librosa")
    wave = _wave(16000, seconds=2.0)
    ours = mfcc.mfcc_frames(wave, 16000, n_mfcc=13, n_fft=512, hop_length=160, n_mels=40, fmax=4000)
    ref = librosa.feature.mfcc(
        y=wave, sr=16000, n_mfcc=13, n_fft=512, hop_length=160, n_mels=40, fmax=4000
    ).T
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=1e-3 * np.abs(ref).max())


def test_mfcc_mean_at_22050_is_the_notebook_feature() -> None:
    librosa = pytest.importorskip("librosa")
    wave = _wave(22050, seconds=2.0)
    ours = make_extractor("mfcc_mean", {"sample_rate": 22050}).transform(wave)
    notebook = np.mean(librosa.feature.mfcc(y=wave, sr=22050, n_mfcc=13).T, axis=0)
    np.testing.assert_allclose(ours, notebook, atol=1e-3 * np.abs(notebook).max())


def test_deltas_and_logmel_match_librosa() -> None:
    librosa = pytest.importorskip("librosa")
    wave = _wave(16000)
    extractor = make_extractor("mfcc_deltas")
    out = extractor.transform(wave)
    base = out[:, : extractor.n_mfcc]
    np.testing.assert_allclose(
        out[:, extractor.n_mfcc : 2 * extractor.n_mfcc],
        librosa.feature.delta(base.T, order=1).T,
        atol=1e-4,
    )
    np.testing.assert_allclose(
        out[:, 2 * extractor.n_mfcc :], librosa.feature.delta(base.T, order=2).T, atol=1e-4
    )
    ours = make_extractor("logmel").transform(wave)
    ref = librosa.power_to_db(
        librosa.feature.melspectrogram(
            y=wave, sr=16000, n_fft=512, hop_length=160, n_mels=64, fmax=4000
        ),
        top_db=80,
    ).T
    np.testing.assert_allclose(ours, ref, atol=1e-2)


def test_mfcc_deltas_pooled_statistics_and_short_input() -> None:
    extractor = make_extractor("mfcc_deltas", {"n_mfcc": 13})
    assert pool_statistics(extractor.transform(_wave(16000))).shape == (6 * 13,)
    short = extractor.transform(_wave(16000, seconds=0.03))  # 4 frames: shorter than the window
    assert short.shape == (4, 39) and np.all(np.isfinite(short))


def test_invalid_parameters_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="fmax"):
        make_extractor("logmel", {"sample_rate": 8000, "fmax": 6000.0}).transform(_wave(8000))
    with pytest.raises(ValueError, match="n_mfcc"):
        make_extractor("mfcc_seq", {"n_mfcc": 50, "n_mels": 40}).transform(_wave(16000))
    with pytest.raises(ValueError, match="unknown parameter"):
        make_extractor("mfcc_mean", {"n_mffc": 20})


# --- command line ---------------------------------------------------------------------------

HEADER = "age,age_onset,birthplace,filename,native_language,sex,speakerid,country,file_missing?,,,,"


def _archive(root: Path, bad: bool = False) -> Path:
    """A three-speaker archive in the real layout (wav recordings at 8 kHz)."""
    (root / "recordings").mkdir(parents=True)
    rows = [HEADER]
    for i, (language, country) in enumerate(
        [("english", "usa"), ("spanish", "spain"), ("french", "france")], start=1
    ):
        name = f"{language}1"
        rows.append(f'30,5,"city, {country}",{name},{language},female,{i},{country},FALSE,,,,')
        sf.write(root / "recordings" / f"{name}.wav", _wave(8000, 1.5, seed=i), 8000)
    if bad:
        rows.append('40,8,"lyon, france",french2,french,male,4,france,FALSE,,,,')
        (root / "recordings" / "french2.wav").write_bytes(b"")
    (root / "speakers_all.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture()
def cli():
    from speechprint.cli import _register_subcommands, app

    _register_subcommands()
    return app


def test_cli_list(cli) -> None:
    result = CliRunner().invoke(cli, ["features", "list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in EXPECTED:
        assert name in result.output
    assert "pooled" in result.output and "sequence" in result.output


def test_cli_extract_then_cached(cli, tmp_path: Path) -> None:
    archive = _archive(tmp_path / "archive", bad=True)
    cache = tmp_path / "cache"
    args = [
        "features",
        "extract",
        "--archive",
        str(archive),
        "--extractor",
        "mfcc_seq",
        "--param",
        "n_mfcc=20",
        "--jobs",
        "1",
        "--cache-dir",
        str(cache),
        "--no-progress",
    ]
    runner = CliRunner()
    first = runner.invoke(cli, args, env={"COLUMNS": "200"})
    assert first.exit_code == 0, first.output
    assert "computed: 3" in first.output and "skipped: 1" in first.output
    assert "french2.wav" in first.output
    assert "3 x (frames 151..151, 20)" in first.output
    # three 1.5 s recordings were computed: the speed line counts their 4.5 s of audio
    assert "0.1 min of audio" in first.output and "s per minute of audio" in first.output
    second = runner.invoke(cli, args, env={"COLUMNS": "200"})
    assert second.exit_code == 0, second.output
    assert "computed: 0" in second.output and "loaded from cache: 3" in second.output
    assert "per minute of audio" not in second.output  # nothing computed, no speed to report


def test_extraction_measures_the_audio_it_computed(tmp_path: Path) -> None:
    from speechprint.features import extract_features, make_extractor

    archive = _archive(tmp_path / "archive", bad=True)
    paths = sorted(str(p) for p in (archive / "recordings").iterdir())
    extractor = make_extractor("mfcc_mean")
    first = extract_features(paths, extractor, jobs=2, cache_dir=tmp_path / "c", progress=False)
    assert first.computed == 3 and first.computed_audio_seconds == pytest.approx(4.5)
    assert first.seconds_per_audio_minute == pytest.approx(first.compute_seconds / 0.075)
    again = extract_features(paths, extractor, jobs=2, cache_dir=tmp_path / "c", progress=False)
    assert again.loaded == 3 and again.seconds_per_audio_minute is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--extractor", "nope"], "mfcc_mean"),  # the error lists the valid names
        (["--extractor", "mfcc_mean", "--param", "n_mfcc"], "key=value"),
        (["--extractor", "mfcc_mean", "--param", "n_mfcc=many"], "n_mfcc"),
        (["--extractor", "mfcc_mean", "--param", "bogus=1"], "unknown parameter"),
    ],
)
def test_cli_extract_user_errors(cli, tmp_path: Path, extra: list[str], message: str) -> None:
    args = ["features", "extract", "--archive", str(tmp_path), *extra]
    result = CliRunner().invoke(cli, args, env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
