"""One chunk of files decoded, transformed and cached: the task a worker process (``extract``)
or a Dask task (``cluster``) runs, below both so neither imports the other."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from speechprint.data.audio import load_audio
from speechprint.features.base import Extractor
from speechprint.features.cache import FeatureCache
from speechprint.features.derived import Outcome

log = logging.getLogger(__name__)


def compute_chunk(
    extractor: Extractor, cache: FeatureCache, items: Sequence[tuple[str, ...]]
) -> list[Outcome]:
    """Decode + transform + cache each file; runs in a worker (or in-process for ``jobs=1``).

    Items are ``(path, key)``, or ``(path, key, text)`` for an extractor that reads each file's
    text (``uses_text``: ``phones``); what it heard is saved beside the entry."""
    outcomes: list[Outcome] = []
    decoded: list[tuple[str, str, np.ndarray]] = []
    texts: list[str | None] = []
    for path, key, *text in items:
        try:
            decoded.append((path, key, load_audio(path, extractor.sample_rate)))
            texts.append(text[0] if text else None)
        except Exception as error:  # noqa: BLE001  any decoder failure means: skip this file
            outcomes.append((path, None, skip_reason(error), 0.0))
    waves = [wave for _, _, wave in decoded]
    if getattr(extractor, "uses_text", False):
        heard = extractor.transform_texts(waves, texts)  # type: ignore[attr-defined]
        for (_, key, _), item in zip(decoded, heard, strict=True):
            _save_info(cache, key, item.info())
        arrays = [item.vector for item in heard]
    else:
        # One call for the chunk: extractors that batch across files (Whisper windows) do so here.
        arrays = extractor.transform_many(waves)
    for (path, key, wave), transformed in zip(decoded, arrays, strict=True):
        array = np.ascontiguousarray(transformed, dtype=np.float32)
        if not np.all(np.isfinite(array)):
            outcomes.append((path, None, f"{extractor.id} produced non-finite values", 0.0))
            continue
        try:
            cache.save(key, array)
        except OSError as error:  # a full or read-only cache must not lose the computed result
            log.warning("could not write feature cache entry for %s: %s", path, error)
        outcomes.append((path, array, None, len(wave) / extractor.sample_rate))
    return outcomes


def _save_info(cache: FeatureCache, key: str, info: dict[str, object]) -> None:
    try:
        cache.save_info(key, info)
    except OSError as error:  # like the entry itself: a read-only cache must not stop the run
        log.warning("could not write %s's transcript beside its cache entry: %s", key, error)


def skip_reason(error: Exception) -> str:
    """Why a file was skipped: the decoder's own reason, else the exception in one line."""
    reason = getattr(error, "reason", None)
    if isinstance(reason, str) and reason:
        return reason
    text = str(error).strip() or "no message"
    return f"{type(error).__name__}: {text}"
