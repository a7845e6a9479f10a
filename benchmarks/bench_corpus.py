"""Corpus scale: ``python benchmarks/bench_corpus.py [--clips 20000] [--jobs 2] [--workers 2]``.

Builds (once, cached on disk) a synthetic Common Voice layout of ``--clips`` short clips (2 s of
eSpeak NG speech each, 10 per speaker, eight accents), then prints side by side:

- the time to build the manifest (corpus reader + speaker-disjoint split), and the synthesis
  time when the corpus was not cached yet;
- ``mfcc_mean`` extraction throughput with local processes and with a Dask LocalCluster of as
  many single-threaded workers (fresh caches each, cluster start-up timed apart), and their ratio;
- the peak resident memory of a ``run`` (``mfcc_seq`` features, pooled by ``logreg``) over every
  clip, with lazy (packed, memory-mapped) features against features loaded into memory, each in
  its own process (``--memory-extractor`` picks another extractor).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from multiprocessing import get_context
from pathlib import Path

import numpy as np

# (eSpeak NG voice, Common Voice accent string) for the eight synthetic accents.
ACCENTS = (
    ("en-us", "United States English"),
    ("en", "England English"),
    ("en-029", "West Indies and Bermuda (Bahamas, Bermuda, Jamaica, Trinidad)"),
    ("de", "German English,Non native speaker"),
    ("hi", "India and South Asia (India, Pakistan, Sri Lanka)"),
    ("ms", "Malaysian English"),
    ("cmn", "Hong Kong English"),
    ("es", "Spanish English"),  # unmapped on purpose: listed by the reader, not trained on
)
PER_SPEAKER = 10
SECONDS = 2.0
RATE = 16000


def _speaker_clips(job: tuple[Path, int]) -> list[str]:
    """One speaker: the paragraph read once, cut into 2 s clips, each with its own noise."""
    import soundfile as sf
    from scipy.signal import resample_poly

    from speechprint.data.synth import paragraph, synthesize

    clips_dir, speaker = job
    voice, accent = ACCENTS[speaker % len(ACCENTS)]
    rng = np.random.default_rng(speaker)
    wave, rate = synthesize(
        paragraph(),
        voice,
        rate=int(rng.integers(150, 200)),
        pitch=int(rng.integers(30, 70)),
        seed=speaker,
    )
    x = resample_poly(wave.astype(np.float32) / 32768.0, RATE, rate).astype(np.float32)
    n = int(SECONDS * RATE)
    lines = []
    for clip in range(PER_SPEAKER):
        start = int(rng.integers(0, max(1, len(x) - n)))
        piece = x[start : start + n] * rng.uniform(0.4, 0.9)
        piece = piece + 10 ** (rng.uniform(-60, -45) / 20) * rng.standard_normal(piece.size)
        name = f"sp{speaker:06d}_{clip:02d}.flac"
        sf.write(clips_dir / name, np.clip(piece, -1, 1).astype(np.float32), RATE, format="FLAC")
        lines.append(f"{speaker:032x}\t{name}\tthe reading passage\ttwenties\tfemale\t{accent}\ten")
    return lines


def build_corpus(root: Path, clips: int, workers: int) -> float:
    """The layout under ``root`` (reused when complete); seconds spent synthesising it, or 0."""
    done = root / f".complete-{clips}"
    if done.exists():
        return 0.0
    started = time.perf_counter()
    clips_dir = root / "clips"
    clips_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(clips_dir, s) for s in range(clips // PER_SPEAKER)]
    with get_context("forkserver").Pool(workers) as pool:
        rows = [line for lines in pool.imap(_speaker_clips, jobs, chunksize=8) for line in lines]
    header = "client_id\tpath\tsentence\tage\tgender\taccents\tlocale\n"
    (root / "validated.tsv").write_text(header + "\n".join(rows) + "\n", encoding="utf-8")
    done.touch()
    return time.perf_counter() - started


def time_manifest(root: Path) -> tuple[float, list[str], int]:
    """Seconds to read the corpus and split it; the clip paths; the speakers in the split."""
    import warnings

    from speechprint.data.corpora import load_corpus
    from speechprint.data.dataset import make_dataset

    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = make_dataset(load_corpus(root, "commonvoice"), "region", min_count=3)
    seconds = time.perf_counter() - started
    return seconds, list(dataset.manifest["path"]), int(dataset.manifest["speakerid"].nunique())


def extraction(paths: list[str], jobs: int, workers: int) -> dict[str, float]:
    """Clips per second for mfcc_mean: local processes, then a LocalCluster (fresh caches)."""
    from distributed import LocalCluster

    from speechprint.features import extract_features, make_extractor

    extractor = make_extractor("mfcc_mean")
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as local_cache:
        started = time.perf_counter()
        extract_features(paths, extractor, jobs=jobs, cache_dir=local_cache, progress=False)
        out["local"] = len(paths) / (time.perf_counter() - started)
    started = time.perf_counter()
    with LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        out["cluster_start_s"] = time.perf_counter() - started
        with tempfile.TemporaryDirectory() as shared_cache:
            started = time.perf_counter()
            extract_features(
                paths,
                extractor,
                dask=cluster.scheduler_address,
                cache_dir=shared_cache,
                progress=False,
            )
            out["dask"] = len(paths) / (time.perf_counter() - started)
    return out


def memory(root: Path, cache: Path, extractor: str, lazy: bool, jobs: int) -> dict[str, float]:
    """Peak resident memory (MB) and seconds of one run, in a process of its own."""
    command = [
        sys.executable,
        __file__,
        "--_memory",
        str(root),
        str(cache),
        extractor,
        "lazy" if lazy else "eager",
        str(jobs),
    ]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _memory_child(root: str, cache: str, extractor: str, mode: str, jobs: str) -> None:
    import warnings

    from speechprint.train import RunConfig, run
    from speechprint.train.prepare import prepare_data

    warnings.simplefilter("ignore")
    started = time.perf_counter()
    config = RunConfig(
        archive=root,
        corpus="commonvoice",
        extractor=extractor,
        model="logreg",
        min_count=3,
        cache_dir=cache,
        jobs=int(jobs),
        lazy_features=mode == "lazy",
    )
    result = run(config, prepare_data(config, progress=False))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux
    print(
        json.dumps(
            {
                "peak_mb": peak,
                "seconds": time.perf_counter() - started,
                "val_balanced_accuracy": result.val["balanced_accuracy"],
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=20000)
    parser.add_argument("--jobs", type=int, default=2, help="local extraction processes")
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster workers")
    parser.add_argument("--memory-extractor", default="mfcc_seq")
    parser.add_argument(
        "--root", type=Path, default=Path.home() / ".cache" / "speechprint" / "bench-corpus"
    )
    args = parser.parse_args()
    root = args.root / f"cv-{args.clips}"
    synth_s = build_corpus(root, args.clips, args.jobs)
    manifest_s, paths, speakers = time_manifest(root)
    print(
        f"corpus: {root} ({len(paths)} clips of {SECONDS:.0f} s in the split, {speakers} "
        f"speakers; synthesis {'cached' if not synth_s else f'{synth_s:.1f} s'})"
    )
    print(f"manifest (commonvoice reader + speaker-disjoint split): {manifest_s:.2f} s")
    speed = extraction(paths, args.jobs, args.workers)
    print(
        f"mfcc_mean extraction: local {args.jobs} processes {speed['local']:.0f} clips/s | "
        f"Dask LocalCluster {args.workers} workers {speed['dask']:.0f} clips/s "
        f"(start-up {speed['cluster_start_s']:.1f} s apart) | ratio dask/local "
        f"{speed['dask'] / speed['local']:.2f}"
    )
    cache = args.root / "feature-cache"  # shared by both memory runs: they time no extraction
    from speechprint.features import extract_features, make_extractor

    extract_features(
        paths,
        make_extractor(args.memory_extractor),
        jobs=args.jobs,
        cache_dir=cache,
        progress=False,
    )
    eager = memory(root, cache, args.memory_extractor, False, args.jobs)
    lazy = memory(root, cache, args.memory_extractor, True, args.jobs)
    print(
        f"run over {len(paths)} clips ({args.memory_extractor} + logreg), peak resident memory: "
        f"lazy {lazy['peak_mb']:.0f} MB ({lazy['seconds']:.0f} s) | loaded "
        f"{eager['peak_mb']:.0f} MB ({eager['seconds']:.0f} s) | ratio lazy/loaded "
        f"{lazy['peak_mb'] / eager['peak_mb']:.2f}; same score: "
        f"{lazy['val_balanced_accuracy'] == eager['val_balanced_accuracy']}"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--_memory":
        _memory_child(*sys.argv[2:7])
    else:
        main()
