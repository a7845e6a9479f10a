"""The phonetic path's cost, today's beside the new one, on real recordings of two corpora.

``python benchmarks/bench_phonetic.py [--shared ../shared/data] [--saa8k 3] [--so762 12]
[--jobs 2]``. For each corpus (saa8k: the passage, ~30 s; so762: short sentences, ~3 s), cold
extractions into empty caches with ``--jobs`` worker processes, in seconds per minute of audio:

- today: ``phoneme_posteriors`` as the aligner reads them (30 s windows), ``whisper_encoder``
  base and ``whisper_words`` (derived from both caches);
- new: ``phones`` with the corpus's transcripts (recognition skipped), ``phones`` without
  (Whisper base recognises each file from the same encoder pass), ``whisper_words`` in one pass
  (``cache_sources: false``).

and the stored size of each cache in MB per hour of audio (today: the frames and posteriors
behind ``whisper_words``; new: ``phones`` + ``whisper_words`` vectors), then the ratios. Then one
process's CPU time per stage on the decoded audio (where the time goes). Without ``../shared`` it
says why and exits 0.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before CTranslate2 or torch start OpenMP

import numpy as np  # noqa: E402

from speechprint.features import extract_features, make_extractor  # noqa: E402

TARGET_SECONDS, TARGET_MB = 1.5, 20.0  # issue 19: per minute of audio; per hour of audio


def corpus_files(shared: Path, saa8k: int, so762: int) -> dict[str, dict[str, str]]:
    """``{corpus: {path: transcript}}``: the archive reads the passage, so762 its own text."""
    from speechprint.data.archive import load_archive
    from speechprint.text.lexicon import passage_text

    archive = [str(p) for p in load_archive(shared / "saa8k").with_audio["path"]][:saa8k]
    root = shared / "so762"
    scp = dict(line.split("\t") for line in (root / "train/wav.scp").read_text().splitlines())
    text = dict(line.split("\t") for line in (root / "train/text").read_text().splitlines())
    # Every 40th utterance: many speakers (adults and children), not one speaker's clips.
    picked = sorted(scp)[::40][:so762]
    return {
        "saa8k": {p: passage_text() for p in archive},
        "so762": {str(root / scp[u]): text[u] for u in picked},
    }


def folder_bytes(cache: Path, prefixes: tuple[str, ...]) -> int:
    return sum(
        f.stat().st_size
        for d in cache.iterdir()
        if d.is_dir() and d.name.startswith(prefixes)
        for f in d.rglob("*")
        if f.is_file()
    )


def cold(
    files: dict[str, str], name: str, params: dict[str, Any], jobs: int, texts: bool = False
) -> tuple[float, int, float]:
    """(wall seconds, bytes cached, audio seconds) of one extraction into an empty cache."""
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        result = extract_features(
            list(files),
            make_extractor(name, params),
            jobs=jobs,
            cache_dir=folder,
            progress=False,
            texts=files if texts else None,
        )
        seconds = time.perf_counter() - started
        stored = folder_bytes(Path(folder), ("phoneme_posteriors", "whisper_", "phones"))
        if result.skipped:
            print(f"  {name}: skipped {len(result.skipped)} files", file=sys.stderr)
    # Derived features (whisper_words from its sources' caches) count no audio of their own.
    import soundfile

    audio = sum(soundfile.info(p).duration for p in result.features)
    return seconds, stored, audio


def compare(files: dict[str, str], jobs: int) -> dict[str, float]:
    """Every figure of one corpus: seconds per audio minute and MB per audio hour."""
    runs: dict[str, tuple[str, dict[str, Any], bool]] = {
        "posteriors today": ("phoneme_posteriors", {"frame_stride": 1}, False),
        "whisper_encoder base": ("whisper_encoder", {"model": "base"}, False),
        "whisper_words today": ("whisper_words", {}, False),
        "phones, given text": ("phones", {}, True),
        "phones, Whisper's text": ("phones", {}, False),
        "whisper_words one pass": ("whisper_words", {"cache_sources": False}, False),
    }
    out: dict[str, float] = {}
    for label, (name, params, texts) in runs.items():
        seconds, stored, audio = cold(files, name, params, jobs, texts)
        out[f"{label} s/min"] = seconds / (audio / 60)
        out[f"{label} MB/h"] = stored / 1e6 / (audio / 3600)
    return out


def stages(files: dict[str, str]) -> dict[str, float]:
    """One process, decoded audio in memory: CPU seconds per audio minute of each stage (CPU
    time, not wall time, so that other work on a shared machine does not blur where it goes)."""
    from speechprint.data.audio import load_audio
    from speechprint.features.alignment import posterior_extractor
    from speechprint.features.phone_alignment import align_text
    from speechprint.features.pretrained import phones
    from speechprint.features.pretrained.whisper import load_whisper
    from speechprint.text.g2p import text_words

    waves = [load_audio(p, 16000) for p in files]
    minutes = sum(len(w) for w in waves) / 16000 / 60
    model = load_whisper("base", "int8")
    phones.hama_posteriors(waves[0][:16000])  # load once, outside the timings
    clock: dict[str, float] = {}

    def timed(label: str, run: Any) -> list[Any]:
        started = time.process_time()
        results = [run(w, t) for w, t in zip(waves, files.values(), strict=True)]
        clock[label] = (time.process_time() - started) / minutes
        return results

    stock = posterior_extractor()
    timed("hama, 30 s windows (today)", lambda w, t: stock.transform(w))
    posteriors = timed("hama, 8 s windows", lambda w, t: phones.hama_posteriors(w))
    whisper_encoder = make_extractor("whisper_encoder", {"model": "base"})
    timed("Whisper encoder, 30 s windows (today)", lambda w, t: whisper_encoder.transform(w))
    timed("Whisper encoder, trimmed", lambda w, t: phones.whisper_pass_many([w], model, [False]))
    timed(
        "Whisper encoder + recognition", lambda w, t: phones.whisper_pass_many([w], model, [True])
    )
    started = time.process_time()
    phones.whisper_pass_many(waves, model, [True] * len(waves))
    clock["Whisper encoder + recognition, batched"] = (time.process_time() - started) / minutes
    words = timed("G2P (cold)", lambda w, t: text_words(t))
    pairs = iter(zip(posteriors, words, strict=True))
    timed("alignment", lambda w, t: align_text(*next(pairs)))
    return clock


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    parser.add_argument("--shared", type=Path, default=default)
    parser.add_argument("--saa8k", type=int, default=3, help="archive recordings (~30 s each)")
    parser.add_argument("--so762", type=int, default=12, help="so762 utterances (~3 s each)")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    if (
        not (args.shared / "saa8k" / "speakers_all.csv").exists()
        or not (args.shared / "so762" / "train" / "text").exists()
    ):
        print(f"skipped: saa8k and so762 not found under {args.shared} (../shared is absent)")
        return {}
    figures: dict[str, dict[str, float]] = {}
    for corpus, files in corpus_files(args.shared, args.saa8k, args.so762).items():
        figures[corpus] = compare(files, args.jobs)
        figures[f"{corpus} stages"] = stages(files)
    report(figures, args.jobs)
    return figures


def report(figures: dict[str, dict[str, float]], jobs: int) -> None:
    for corpus in ("saa8k", "so762"):
        f = figures[corpus]
        print(f"\n{corpus}: cold extraction, {jobs} worker processes (s/min: per minute of audio)")
        for key, value in f.items():
            print(f"  {key:<40} {value:8.2f}")
        today = f["posteriors today s/min"]
        given, heard = f["phones, given text s/min"], f["phones, Whisper's text s/min"]
        rows = {
            "phones (given text) / posteriors today": given / today,
            "phones (Whisper's text) / posteriors today": heard / today,
            "whisper_words one pass / today": f["whisper_words one pass s/min"]
            / f["whisper_words today s/min"],
        }
        for key, value in rows.items():
            print(f"  {key:<46} {value:6.2f}x")
        # whisper_words today writes its sources (frames, posteriors) into its cache as well.
        stored_today = f["whisper_words today MB/h"]
        stored_new = f["phones, given text MB/h"] + f["whisper_words one pass MB/h"]
        print(f"  stored today (words + its frames, posteriors) {stored_today:8.1f} MB/h")
        print(f"  stored new (phones + whisper_words)           {stored_new:8.1f} MB/h")
        print(f"  targets: phonetic path <= {TARGET_SECONDS} s/min; stored <= {TARGET_MB} MB/h")
        print(f"{corpus}: one process, decoded audio, CPU seconds per minute of audio")
        for key, value in figures[f"{corpus} stages"].items():
            print(f"  {key:<40} {value:8.2f}")
        # hama's engine is single-threaded: spread over the workers, it alone costs this much.
        floor = figures[f"{corpus} stages"]["hama, 8 s windows"] / jobs
        print(f"  hama alone over {jobs} workers (the floor) {floor:8.2f} s/min")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
