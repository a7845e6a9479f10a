"""Extract features for many files: cache first, then parallel processes for the misses.

The parent hashes each file and loads cached entries (cheap); only misses go to worker processes
(or, with ``dask=ADDRESS``, to the tasks of a Dask cluster: ``features.cluster``), in chunks so
per-task overhead stays small. ``lazy=True`` holds no array: entries are checked by their header
and the result maps each file into one packed, memory-mapped file (``features.lazy``). Workers decode, transform, write their own cache
entries (atomically) and send the arrays back. A file that cannot be decoded is skipped with its
reason and reported; the run goes on. Errors inside an extractor's ``transform`` are bugs or
invalid parameters, not bad audio, so they propagate instead of skipping every file.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from speechprint.core.processes import init_worker, mp_context
from speechprint.core.progress import progress_bar
from speechprint.features.base import Extractor
from speechprint.features.cache import (
    FeatureCache,
    content_hash,
    resolve_cache_dir,
    resolve_cache_root,
)
from speechprint.features.chunk import compute_chunk
from speechprint.features.cluster import compute_on_cluster
from speechprint.features.derived import Outcome
from speechprint.features.lazy import LazyArrays, pack

__all__ = ["FeatureSet", "SkippedFile", "extract_features", "resolve_cache_dir"]

log = logging.getLogger(__name__)

CLUSTER_BATCH = 32  # files per Dask task: scheduling overhead stays negligible next to decoding


@dataclass(frozen=True)
class SkippedFile:
    """A file that could not be decoded, and why."""

    file: str
    reason: str


@dataclass
class FeatureSet:
    """Features keyed by ``str(path)`` in input order, plus what was skipped and what was cached."""

    extractor: Extractor
    features: Mapping[str, np.ndarray]  # a dict, or ``PackedFeatures`` when extracted lazily
    skipped: list[SkippedFile] = field(default_factory=list)
    computed: int = 0
    loaded: int = 0
    compute_seconds: float = 0.0  # wall time spent computing the cache misses
    # Extractors that read each file's text (``phones``): per path, what was used and how much
    # of it was aligned: ``{"text", "source" ("given" | "whisper"), "aligned_share"}``.
    transcripts: dict[str, dict[str, Any]] = field(default_factory=dict)
    computed_audio_seconds: float = 0.0  # duration of the audio those misses held

    @property
    def seconds_per_audio_minute(self) -> float | None:
        """Wall seconds of extraction per minute of computed audio (None when all was cached)."""
        if not self.computed_audio_seconds:
            return None
        return self.compute_seconds / (self.computed_audio_seconds / 60.0)

    def __len__(self) -> int:
        return len(self.features)

    def arrays(self, paths: Iterable[str]) -> Sequence[np.ndarray]:
        """The arrays of ``paths``: a list, or (lazy features) a sequence that looks each one up
        only when it is used."""
        if isinstance(self.features, dict):
            return [self.features[p] for p in paths]
        return LazyArrays(self.features, [str(p) for p in paths])

    @property
    def dim(self) -> int | None:
        """Feature dimension (last axis), or ``None`` when nothing was extracted."""
        first = next(iter(self.features.values()), None)
        return None if first is None else int(first.shape[-1])

    def shape_summary(self) -> str:
        """``"(1079, 13)"`` when pooled, ``"1079 x (frames 410..2100, 39)"`` for sequences."""
        if not self.features:
            return "(0 files)"
        arrays = list(self.features.values())
        if arrays[0].ndim == 1:
            return f"({len(arrays)}, {self.dim})"
        frames = [len(a) for a in arrays]
        return f"{len(arrays)} x (frames {min(frames)}..{max(frames)}, {self.dim})"


def extract_features(
    paths: Iterable[str | os.PathLike[str]],
    extractor: Extractor,
    *,
    jobs: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    dask: str | None = None,
    lazy: bool = False,
    texts: Mapping[str, str | None] | None = None,
) -> FeatureSet:
    """Features for every decodable file in ``paths`` (cached on disk, misses in parallel).

    ``jobs`` defaults to all cores; ``jobs=1`` computes in this process without a pool. ``dask``
    (a scheduler address) computes the misses on that cluster instead. ``cache_dir`` may be an
    fsspec URL. ``lazy`` returns packed, memory-mapped features instead of arrays in memory.
    ``texts`` (by ``str(path)``) is what each file says, for extractors that read it
    (``uses_text``: ``phones``); a file without one (or ``None``) is recognised by Whisper. The
    text is part of the cache key; other extractors ignore it.
    """
    ordered = list(dict.fromkeys(str(p) for p in paths))  # unique, input order kept
    cache = FeatureCache(resolve_cache_root(cache_dir), extractor)
    by_text = getattr(extractor, "uses_text", False)
    file_texts = {p: (texts or {}).get(p) for p in ordered} if by_text else None
    results, keys, skipped, misses = _look_up(ordered, cache, lazy, file_texts)
    loaded = len(results)

    computed, audio_seconds, started = 0, 0.0, time.perf_counter()
    if misses:
        # Derived features (a fusion, one of every layer) come from their sources' caches.
        compose = getattr(extractor, "compose_files", None)
        parts = functools.partial(
            extract_features,
            jobs=jobs,
            cache_dir=cache_dir,
            progress=progress,
            dask=dask,
            lazy=True,
            texts=texts,  # a fusion's parts that read text (phones) get the files' texts
        )
        outcomes = compose(misses, cache, parts) if compose else None
        if outcomes is None:
            outcomes = _compute(misses, extractor, cache, jobs, progress, dask)
        for path, array, reason, seconds in outcomes:
            if array is None:
                skipped[path] = SkippedFile(path, reason or "unknown error")
            else:
                results[path] = None if lazy else array
                computed += 1
                audio_seconds += seconds
    compute_seconds = time.perf_counter() - started if misses else 0.0

    for item in skipped.values():
        log.warning("skipped %s: %s", item.file, item.reason)
    kept = [p for p in ordered if p in results]
    features: Mapping[str, np.ndarray]
    if lazy and kept:
        features = pack(cache, [(p, keys[p]) for p in kept], extractor.kind == "pooled")
    else:
        features = {p: results[p] for p in kept}  # type: ignore[misc]
    heard = {p: cache.load_info(keys[p]) or {} for p in kept} if by_text else {}
    return FeatureSet(
        extractor=extractor,
        features=features,
        skipped=[skipped[p] for p in ordered if p in skipped],
        computed=computed,
        loaded=loaded,
        compute_seconds=compute_seconds,
        computed_audio_seconds=audio_seconds,
        transcripts=heard,
    )


def _look_up(
    ordered: list[str],
    cache: FeatureCache,
    lazy: bool,
    texts: dict[str, str | None] | None = None,
) -> tuple[
    dict[str, np.ndarray | None], dict[str, str], dict[str, SkippedFile], list[tuple[str, ...]]
]:
    """Cached arrays (``None`` when lazy: present, not held), content keys, unreadable files,
    and the ``(path, key)`` misses to compute; with ``texts`` (an extractor that reads them) the
    key also names the text and the misses are ``(path, key, text)``."""
    results: dict[str, np.ndarray | None] = {}
    keys: dict[str, str] = {}
    skipped: dict[str, SkippedFile] = {}
    misses: list[tuple[str, ...]] = []
    for path in ordered:
        try:
            keys[path] = key = content_hash(path)
        except OSError as error:
            skipped[path] = SkippedFile(path, f"cannot read file: {error.strerror or error}")
            continue
        if texts is not None:
            keys[path] = key = f"{key}-{text_key(texts[path])}"
        array = cache.load(key, mmap=lazy and cache.url is None)  # lazy: the header only
        if array is None:
            text = None if texts is None else texts[path]
            misses.append((path, key) if text is None else (path, key, text))
        else:
            results[path] = None if lazy else array
    return results, keys, skipped, misses


def text_key(text: str | None) -> str:
    """The text's part of a cache key: ``whisper`` (recognised) or a digest of the given text."""
    if text is None:
        return "whisper"
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()


def _compute(
    misses: Sequence[tuple[str, ...]],
    extractor: Extractor,
    cache: FeatureCache,
    jobs: int | None,
    progress: bool,
    dask: str | None = None,
) -> list[Outcome]:
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(misses)))
    outcomes: list[Outcome] = []
    with progress_bar(progress, len(misses), f"extracting {extractor.id}") as advance:
        if dask:
            size = CLUSTER_BATCH
            chunks = [misses[i : i + size] for i in range(0, len(misses), size)]
            return compute_on_cluster(dask, chunks, extractor, cache, advance)
        if jobs == 1:
            for item in misses:
                outcomes.extend(compute_chunk(extractor, cache, [item]))
                advance(1)
            return outcomes
        # Several chunks per worker balance uneven file lengths; ~32 files per task keeps the
        # pickling and scheduling overhead negligible next to decoding.
        size = max(1, min(32, len(misses) // (jobs * 4)))
        chunks = [misses[i : i + size] for i in range(0, len(misses), size)]
        pool = ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=mp_context(),
            initializer=init_worker,
            initargs=(os.getpid(),),
        )
        try:
            pending: set[Future[list[Outcome]]] = {
                pool.submit(compute_chunk, extractor, cache, chunk) for chunk in chunks
            }
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    chunk_outcomes = future.result()  # re-raises a worker's exception
                    outcomes.extend(chunk_outcomes)
                    advance(len(chunk_outcomes))
        except BaseException:
            # Ctrl-C or a failed chunk: drop the queued chunks instead of finishing them first.
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
    return outcomes
