"""Features derived from other extractors' cached features instead of from audio.

An extractor whose output is a function of other extractors' outputs (a ``fusion`` of parts, one
layer of ``whisper_layers``' every-layer statistics) defines ``compose_files(misses, cache,
extract_part)``; ``extract_features`` calls it for the files missing from its cache, with
``extract_part(paths, extractor)`` extracting a source as if a study had named it alone (its own
cache, progress and skips). ``derived_outcomes`` turns the sources into the missing entries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from speechprint.features.cache import FeatureCache

log = logging.getLogger(__name__)

Outcome = tuple[str, "np.ndarray | None", "str | None", float]  # path, array, reason, seconds
ExtractPart = Callable[[list[str], Any], Any]  # (paths, extractor) -> FeatureSet


def derived_outcomes(
    misses: Sequence[tuple[str, str]],
    cache: FeatureCache,
    sources: Sequence[Any],
    combine: Callable[[list[np.ndarray]], np.ndarray],
) -> list[Outcome]:
    """``combine`` of each file's source arrays, cached under ``cache``; a file any source skipped
    is skipped with the first such source's reason (prefixed by its id when there are several)."""
    reasons: dict[str, str] = {}
    for source in sources:
        for item in source.skipped:
            prefix = f"{source.extractor.id}: " if len(sources) > 1 else ""
            reasons.setdefault(item.file, prefix + item.reason)
    outcomes: list[Outcome] = []
    for path, key in misses:
        if path in reasons:
            outcomes.append((path, None, reasons[path], 0.0))
            continue
        array = np.ascontiguousarray(
            combine([np.asarray(source.features[path]) for source in sources]), dtype=np.float32
        )
        try:
            cache.save(key, array)
        except OSError as error:  # a read-only cache must not lose the result
            log.warning("could not write feature cache entry for %s: %s", path, error)
        outcomes.append((path, array, None, 0.0))  # audio time is counted by the sources
    return outcomes
