"""Feature extractors by name, with a disk cache and parallel extraction.

Importing this package registers every extractor in ``FEATURES`` (one module per family).
"""

from __future__ import annotations

from speechprint.features import fusion, logmel, mfcc, pretrained  # noqa: F401  (they register)
from speechprint.features.base import (
    FEATURES,
    Extractor,
    Kind,
    check_extractor_params,
    make_extractor,
    pool_statistics,
)
from speechprint.features.cache import resolve_cache_dir
from speechprint.features.extract import FeatureSet, SkippedFile, extract_features

__all__ = [
    "FEATURES",
    "Extractor",
    "FeatureSet",
    "Kind",
    "SkippedFile",
    "check_extractor_params",
    "extract_features",
    "make_extractor",
    "pool_statistics",
    "resolve_cache_dir",
]
