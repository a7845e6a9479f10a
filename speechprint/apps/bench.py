"""Benchmark: ``mfcc_mean`` against the original notebook's method, in one run.

1. the notebook, serially: ``librosa.load(path, sr=22050)`` + ``librosa.feature.mfcc(n_mfcc=13)``
   averaged over time;
2. ``mfcc_mean`` with a cold cache (a fresh temporary cache folder, all cores);
3. ``mfcc_mean`` again with the now-warm cache.

Speed must not come from computing less, so the report also compares vectors: ``mfcc_mean`` run
at the notebook's 22050 Hz (otherwise identical settings) against the notebook's own vectors, per
file (Pearson correlation and the largest difference relative to the vector's norm).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from speechprint.core.errors import ConfigError
from speechprint.data.archive import load_archive
from speechprint.features import extract_features, make_extractor

NOTEBOOK_RATE = 22050


def notebook_mfcc_mean(path: str) -> np.ndarray:
    """The notebook's feature, verbatim: 13 MFCCs at 22050 Hz with librosa's defaults, averaged."""
    import librosa

    y, sr = librosa.load(path, sr=NOTEBOOK_RATE)
    return np.mean(librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13).T, axis=0)


@dataclass
class BenchResult:
    files: int
    jobs: int
    cpus: int
    notebook_s: float
    cold_s: float
    warm_s: float
    cold_computed: int
    warm_loaded: int
    skipped: int
    correlation: np.ndarray = field(repr=False)  # per file, ours at 22050 vs notebook
    rel_diff: np.ndarray = field(repr=False)  # per file, max |ours - notebook| / ||notebook||
    correlation_16k: np.ndarray = field(repr=False)  # per file, default 16 kHz vs notebook

    @property
    def notebook_over_cold(self) -> float:
        return self.notebook_s / self.cold_s

    @property
    def cold_over_warm(self) -> float:
        return self.cold_s / self.warm_s


def run_benchmark(
    paths: Sequence[str], *, jobs: int | None = None, progress: bool = True
) -> BenchResult:
    """Time the three methods over ``paths`` and compare the notebook's vectors with ours."""
    import librosa  # imported before timing: the notebook's import is not part of its loop

    librosa.feature.mfcc  # noqa: B018  (resolve the lazy submodule outside the timed loop)
    jobs = jobs or os.cpu_count() or 1

    notebook: dict[str, np.ndarray] = {}
    start = time.perf_counter()
    for path in paths:
        try:
            notebook[path] = notebook_mfcc_mean(path)
        except Exception:  # noqa: BLE001  the notebook crashes on these; we just leave them out
            pass
    notebook_s = time.perf_counter() - start

    extractor = make_extractor("mfcc_mean")
    with tempfile.TemporaryDirectory(prefix="speechprint-bench-") as cache_dir:
        start = time.perf_counter()
        cold = extract_features(paths, extractor, jobs=jobs, cache_dir=cache_dir, progress=progress)
        cold_s = time.perf_counter() - start
        start = time.perf_counter()
        warm = extract_features(paths, extractor, jobs=jobs, cache_dir=cache_dir, progress=False)
        warm_s = time.perf_counter() - start
        # Not timed: the same extractor at the notebook's rate, to compare like with like.
        same_rate = extract_features(
            paths,
            make_extractor("mfcc_mean", {"sample_rate": NOTEBOOK_RATE}),
            jobs=jobs,
            cache_dir=cache_dir,
            progress=False,
        )

    common = [p for p in paths if p in notebook and p in same_rate.features]
    ours = np.stack([same_rate.features[p] for p in common]) if common else np.empty((0, 13))
    ref = np.stack([notebook[p] for p in common]) if common else np.empty((0, 13))
    ours_16k = np.stack([cold.features[p] for p in common if p in cold.features] or [ref[:0]])
    return BenchResult(
        files=len(paths),
        jobs=jobs,
        cpus=os.cpu_count() or 1,
        notebook_s=notebook_s,
        cold_s=cold_s,
        warm_s=warm_s,
        cold_computed=cold.computed,
        warm_loaded=warm.loaded,
        skipped=len(cold.skipped),
        correlation=_rowwise_pearson(ours, ref),
        rel_diff=np.abs(ours - ref).max(axis=1) / np.linalg.norm(ref, axis=1) if common else ref,
        correlation_16k=_rowwise_pearson(ours_16k, ref) if len(ours_16k) == len(ref) else ref[:0],
    )


def archive_paths(archive: str | os.PathLike[str], limit: int | None = None) -> list[str]:
    """The archive's recordings (rows with audio), optionally only the first ``limit``."""
    if limit is not None and limit < 1:
        raise ConfigError("limit must be at least 1")
    return [str(p) for p in load_archive(os.fspath(archive)).with_audio["path"]][:limit]


def _rowwise_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def format_report(result: BenchResult, *, label: str = "") -> str:
    """The benchmark's printed summary (plain text, one figure per line)."""
    corr, corr16, rel = result.correlation, result.correlation_16k, result.rel_diff

    def stats(values: np.ndarray, fmt: str, worst: str = "min") -> str:
        if not len(values):
            return "n/a"
        extreme = values.min() if worst == "min" else values.max()
        return f"mean {values.mean():{fmt}}, {worst} {extreme:{fmt}} over {len(values)} files"

    lines = [
        f"mfcc_mean benchmark{f' on {label}' if label else ''}: {result.files} files, "
        f"{result.jobs} worker process(es), {result.cpus} CPU core(s)",
        f"  notebook (serial librosa.load sr=22050 + mfcc): {result.notebook_s:8.2f} s",
        f"  mfcc_mean, cold cache:                           {result.cold_s:8.2f} s "
        f"({result.cold_computed} computed, {result.skipped} skipped)",
        f"  mfcc_mean, warm cache:                           {result.warm_s:8.2f} s "
        f"({result.warm_loaded} loaded)",
        f"  notebook / cold: {result.notebook_over_cold:6.1f}x   (target >= 3x)",
        f"  cold / warm:     {result.cold_over_warm:6.1f}x   (target >= 20x)",
        f"  Pearson r, mfcc_mean at 22050 Hz vs notebook: {stats(corr, '.6f')}",
        f"  max |difference| / ||notebook vector||:       {stats(rel, '.2e', 'max')}",
        f"  Pearson r, mfcc_mean at 16 kHz (default) vs notebook: {stats(corr16, '.4f')}",
    ]
    return "\n".join(lines)
