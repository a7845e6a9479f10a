"""Whisper extraction speed and int8 agreement, side by side, on real archive recordings.

``python benchmarks/bench_whisper.py [--archive ../shared/data/saa8k] [--limit 100] [--jobs 2]``
(``--limit 0``: every recording). Prints, for tiny.en and base:

- seconds per minute of audio of a cold ``extract_features`` (decode + encode + cache, ``--jobs``
  worker processes): what ``speechprint features extract`` reports;
- one worker's encode time with 30 s windows batched across files (``transform_many``, as the
  extraction worker calls it) against one file at a time (``transform``), decoded audio in memory;
- the PyTorch float32 path (every layer, ``whisper_layers``) and ``whisper_language``;
- agreement of the int8 default with float32 (cosine per frame, mean and 1st percentile).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before CTranslate2 or torch start OpenMP

import numpy as np  # noqa: E402

from speechprint.features import extract_features, make_extractor  # noqa: E402

MODELS = ("tiny.en", "base")


def archive_paths(archive: str, limit: int) -> list[str]:
    from speechprint.data.archive import load_archive

    paths = [str(p) for p in load_archive(archive).with_audio["path"]]
    return paths if limit == 0 else paths[:limit]


def cold_extract(paths: list[str], name: str, params: dict[str, Any], jobs: int) -> float:
    """Seconds per audio minute of an extraction into an empty cache."""
    with tempfile.TemporaryDirectory() as cache:
        result = extract_features(
            paths, make_extractor(name, params), jobs=jobs, cache_dir=cache, progress=False
        )
    return float(result.seconds_per_audio_minute or float("nan"))


def timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def per_minute(seconds: float, waves: list[np.ndarray]) -> float:
    return seconds / (sum(len(w) for w in waves) / 16000 / 60)


def batching(waves: list[np.ndarray], model: str) -> tuple[float, float]:
    """One process, one thread: (batched, one at a time) seconds per audio minute."""
    extractor = make_extractor("whisper_encoder", {"model": model, "threads": 1})
    extractor.transform(waves[0])  # load the model outside the timing
    chunks = [waves[i : i + 32] for i in range(0, len(waves), 32)]  # the extraction chunk size
    batched = timed(lambda: [extractor.transform_many(chunk) for chunk in chunks])
    single = timed(lambda: [extractor.transform(w) for w in waves])
    return per_minute(batched, waves), per_minute(single, waves)


def agreement(waves: list[np.ndarray], model: str) -> tuple[float, float]:
    """Cosine of int8 frames with float32 frames: mean and 1st percentile over all frames."""
    int8 = make_extractor("whisper_encoder", {"model": model, "threads": 1})
    full = make_extractor(
        "whisper_encoder", {"model": model, "compute_type": "float32", "threads": 1}
    )
    cosines = []
    for a, b in zip(int8.transform_many(waves), full.transform_many(waves), strict=True):
        cosines.append((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)))
    values = np.concatenate(cosines)
    return float(values.mean()), float(np.percentile(values, 1))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--archive", default="../shared/data/saa8k")
    parser.add_argument("--limit", type=int, default=100, help="recordings (0 = all)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument(
        "--in-process", type=int, default=32, help="recordings for the one-worker rows"
    )
    parser.add_argument("--agreement", type=int, default=8, help="recordings for int8 vs float32")
    args = parser.parse_args()

    from speechprint.data.audio import load_audio

    paths = archive_paths(args.archive, args.limit)
    waves = [load_audio(p, 16000) for p in paths[: max(args.in_process, args.agreement)]]
    minutes = sum(len(w) for w in waves[: args.in_process]) / 16000 / 60
    rows: dict[str, dict[str, str]] = {m: {} for m in MODELS}
    for model in MODELS:
        row = rows[model]
        row[f"extract, {args.jobs} jobs (s/min)"] = (
            f"{cold_extract(paths, 'whisper_encoder', {'model': model}, args.jobs):.3f}"
        )
        batched, single = batching(waves[: args.in_process], model)
        row["1 worker, batched (s/min)"] = f"{batched:.3f}"
        row["1 worker, one at a time (s/min)"] = f"{single:.3f}"
        row["all layers, PyTorch fp32, extract (s/min)"] = (
            f"{cold_extract(paths, 'whisper_layers', {'model': model}, args.jobs):.3f}"
        )
        mean, low = agreement(waves[: args.agreement], model)
        row["int8 vs float32 cosine (mean / p1)"] = f"{mean:.4f} / {low:.4f}"
    language = cold_extract(paths, "whisper_language", {}, args.jobs)

    print(
        f"{len(paths)} recordings from {args.archive}; one-worker rows on {args.in_process} "
        f"({minutes:.1f} min of audio), agreement on {args.agreement}; {os.cpu_count()} cores"
    )
    width = max(len(k) for k in rows[MODELS[0]])
    print(f"{'':<{width}}  " + "  ".join(f"{m:>16}" for m in MODELS) + f"  {'base / tiny.en':>14}")
    for key in rows[MODELS[0]]:
        values = [rows[m][key] for m in MODELS]
        ratio = ""
        if "/" not in values[0]:
            ratio = f"{float(values[1]) / float(values[0]):.2f}x"
        print(f"{key:<{width}}  " + "  ".join(f"{v:>16}" for v in values) + f"  {ratio:>14}")
    print(f"{'whisper_language (base), extract (s/min)':<{width}}  {language:>16.3f}")


if __name__ == "__main__":
    main()
