"""A test run leaves nothing behind: caches point at temporary folders, never the user's."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from speechprint.features.cache import resolve_cache_dir
from speechprint.features.pretrained.weights import models_dir


def test_each_test_has_its_own_feature_cache_and_the_session_its_models(
    tmp_path: Path, cache_dir: Path
) -> None:
    home = Path.home().resolve()
    assert resolve_cache_dir() == cache_dir and cache_dir.is_relative_to(tmp_path)
    assert not models_dir().resolve().is_relative_to(home)
    assert not Path(os.environ["MPLCONFIGDIR"]).resolve().is_relative_to(home)
    assert models_dir(cache_dir) == cache_dir / "models"  # an explicit cache keeps its models


def test_a_fusion_over_a_waveform_caches_its_parts_in_the_tests_folder(
    tmp_path: Path, cache_dir: Path
) -> None:
    from speechprint.features import make_extractor

    fusion = make_extractor("fusion", {"parts": ["mfcc_mean", "mfcc_deltas"]})
    rate = 16000
    wave = (0.1 * np.sin(np.arange(rate * 2) / 7.0)).astype(np.float32)
    vector = fusion.transform(wave)
    assert vector.ndim == 1 and vector.size > 0
    parts = cache_dir / "fusion-parts"
    assert parts.is_dir() and any(parts.rglob("*"))
