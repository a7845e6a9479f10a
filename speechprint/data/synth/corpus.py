"""The demo corpus on disk: ``speakers_all.csv`` and ``recordings/<filename>.mp3``.

Every synthetic speaker gets its own voice variant, pitch, pitch range, speed, word gap, gain and
noise floor, so classes vary within. All of it is drawn up front (`_plan`), from the seed and each
speaker's filename, so worker threads have nothing random left to decide and the same seed gives
the same corpus, byte for byte.
"""

from __future__ import annotations

import csv
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speechprint.core.errors import ConfigError
from speechprint.data.synth.espeak import synthesize
from speechprint.data.synth.voices import (
    _FEMALE_VARIANTS,
    _MALE_VARIANTS,
    ACCENT_CLASSES,
    AccentClass,
)

__all__ = ["CSV_COLUMNS", "SAMPLE_RATE", "paragraph", "synthesize_corpus"]

CSV_COLUMNS = (
    "age",
    "age_onset",
    "birthplace",
    "filename",
    "native_language",
    "sex",
    "speakerid",
    "country",
    "file_missing?",
    "",  # the real file ends its header with an empty name (pandas: "Unnamed: 9")
)
SAMPLE_RATE = 16_000


def paragraph() -> str:
    """The archive's reading passage (whitespace normalised)."""
    text = (Path(__file__).parent.parent / "paragraph.txt").read_text(encoding="utf-8")
    return " ".join(text.split())


def _text_for(seconds: float | None, rate: int) -> str:
    """The whole paragraph, or its first sentences: enough words for about `seconds`."""
    text = paragraph()
    if seconds is None:
        return text
    words_needed = seconds * rate / 60.0 * 1.25 + 2
    sentences = re.split(r"(?<=[.:])\s+", text)
    chosen: list[str] = []
    n_words = 0
    for sentence in sentences:
        chosen.append(sentence)
        n_words += len(sentence.split())
        if n_words >= words_needed:
            break
    return " ".join(chosen)


def _render(wave: np.ndarray, native_rate: int, rng, seconds: float | None) -> np.ndarray:
    from scipy.signal import resample_poly

    x = wave.astype(np.float32) / 32768.0
    if native_rate != SAMPLE_RATE:
        g = np.gcd(SAMPLE_RATE, native_rate)
        x = resample_poly(x, SAMPLE_RATE // g, native_rate // g).astype(np.float32)
    if seconds is not None:
        n = int(round(seconds * SAMPLE_RATE))
        if x.size > n:
            x = x[:n].copy()
            fade = min(n, int(0.05 * SAMPLE_RATE))
            x[n - fade :] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak > 0:
        x *= rng.uniform(0.35, 0.9) / peak  # recording level
    noise_db = rng.uniform(-62.0, -48.0)  # noise floor, dBFS
    x += (10 ** (noise_db / 20.0) * rng.standard_normal(x.size)).astype(np.float32)
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def _write_audio(path: Path, x: np.ndarray) -> Path:
    import soundfile as sf

    try:
        sf.write(path, x, SAMPLE_RATE, format="MP3", subtype="MPEG_LAYER_III")
        return path
    except (sf.LibsndfileError, TypeError, ValueError, RuntimeError):
        # libsndfile < 1.1 has no MP3 encoder: keep the archive layout with lossless FLAC, which
        # the archive reader accepts as well.
        path.unlink(missing_ok=True)
        flac = path.with_suffix(".flac")
        sf.write(flac, x, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
        return flac


def _speaker_rng(seed: int, key: str) -> np.random.Generator:
    return np.random.default_rng([seed & 0xFFFFFFFF, zlib.crc32(key.encode())])


@dataclass(frozen=True)
class _Job:
    """One speaker to synthesise: everything the worker needs, nothing random left."""

    filename: str
    voice: str
    rate: int
    pitch: int
    pitch_range: int
    gap: int
    espeak_seed: int
    render_seed: int


def _run_job(recordings: Path, seconds: float | None, job: _Job) -> Path:
    wave, native_rate = synthesize(
        _text_for(seconds, job.rate),
        job.voice,
        rate=job.rate,
        pitch=job.pitch,
        pitch_range=job.pitch_range,
        gap=job.gap,
        seed=job.espeak_seed,
    )
    if wave.size == 0:
        raise RuntimeError(f"eSpeak NG produced no audio for voice {job.voice!r}")
    audio = _render(wave, native_rate, np.random.default_rng(job.render_seed), seconds)
    return _write_audio(recordings / f"{job.filename}.mp3", audio)


def synthesize_corpus(
    out_dir: str | Path,
    *,
    speakers_per_class: int = 8,
    seconds: float | None = None,
    seed: int = 0,
    progress: bool = True,
    jobs: int | None = None,
) -> Path:
    """Write a demo corpus in the archive layout to `out_dir` and return it as a Path.

    ``speakers_all.csv`` has the real archive's columns; each speaker's recording is
    ``recordings/<native_language><n>.mp3`` (16 kHz mono). Two extra rows have no recording and
    ``file_missing?`` TRUE, as in real downloads. `seconds` cuts each recording to about that
    length (only the first sentences are spoken); None reads the whole paragraph. The same `seed`
    gives the same corpus, byte for byte. `jobs`: worker threads (default: all cores).
    """
    if speakers_per_class < 1:
        raise ConfigError(f"speakers_per_class must be at least 1, got {speakers_per_class}")
    if seconds is not None and seconds <= 0:
        raise ConfigError(f"seconds must be positive, got {seconds}")
    synthesize("Hello.", "en-us")  # fails early, with a clear error, when eSpeak NG cannot start
    out = Path(out_dir)
    recordings = out / "recordings"
    recordings.mkdir(parents=True, exist_ok=True)
    rows, jobs_list = _plan(seed, speakers_per_class)
    _synthesize_all(recordings, seconds, jobs_list, workers=jobs, progress=progress)
    _write_csv(out / "speakers_all.csv", rows)
    return out


def _plan(seed: int, speakers_per_class: int) -> tuple[list[dict], list[_Job]]:
    """Every speaker's CSV row and synthesis job, plus the two rows without a recording."""
    rng = np.random.default_rng(seed)
    n_speakers = len(ACCENT_CLASSES) * speakers_per_class
    speaker_ids = (rng.permutation(n_speakers + 2) + 1 + int(rng.integers(0, 500))).tolist()
    counters: dict[str, int] = {}
    rows: list[dict] = []
    jobs: list[_Job] = []
    for cls in ACCENT_CLASSES:
        flip = int(rng.integers(2))  # which sex comes first: classes stay balanced
        for i in range(speakers_per_class):
            n = counters[cls.native_language] = counters.get(cls.native_language, 0) + 1
            female = (i + flip) % 2 == 1
            filename = f"{cls.native_language}{n}"
            job, row = _speaker(cls, i, filename, female, seed=seed, speakerid=speaker_ids.pop())
            jobs.append(job)
            rows.append(row)
    rows.extend(_missing_rows(counters, speaker_ids))
    return rows, jobs


def _speaker(cls: AccentClass, i: int, filename: str, female: bool, *, seed: int, speakerid: int):
    """The `i`-th speaker of `cls`: its synthesis job and CSV row, drawn from its own generator."""
    srng = _speaker_rng(seed, filename)
    variants = _FEMALE_VARIANTS if female else _MALE_VARIANTS
    variant = variants[int(srng.integers(len(variants)))]
    job = _Job(
        filename=filename,
        voice=f"{cls.voices[i % len(cls.voices)]}+{variant}",
        rate=int(srng.integers(135, 200)),  # words per minute (eSpeak default 175)
        pitch=int(srng.integers(30, 71)),  # 0-100 (default 50)
        pitch_range=int(srng.integers(25, 86)),  # 0-100 (default 50)
        gap=int(srng.integers(0, 3)),  # extra pause between words, x 10 ms
        espeak_seed=int(srng.integers(2**31)),
        render_seed=int(srng.integers(2**63)),
    )
    age = int(srng.integers(18, 71))
    row = _row(
        cls,
        age=age,
        age_onset=0 if cls.english_native else int(srng.integers(4, min(age, 25) + 1)),
        birthplace=cls.birthplaces[int(srng.integers(len(cls.birthplaces)))],
        filename=filename,
        sex="female" if female else "male",
        speakerid=speakerid,
        missing=False,
    )
    return job, row


def _missing_rows(counters: dict[str, int], speaker_ids: list[int]) -> list[dict]:
    """Real downloads list speakers whose recording is not there."""
    rows = []
    for cls in (ACCENT_CLASSES[0], ACCENT_CLASSES[-1]):
        n = counters[cls.native_language] = counters[cls.native_language] + 1
        rows.append(
            _row(
                cls,
                age=30,
                age_onset=0 if cls.english_native else 12,
                birthplace=cls.birthplaces[0],
                filename=f"{cls.native_language}{n}",
                sex="male",
                speakerid=speaker_ids.pop(),
                missing=True,
            )
        )
    return rows


def _write_csv(path: Path, rows: list[dict]) -> None:
    rows = sorted(rows, key=lambda r: (r["native_language"], r["filename"]))
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(rows)


def _row(cls: AccentClass, *, age, age_onset, birthplace, filename, sex, speakerid, missing):
    return {
        "age": age,
        "age_onset": age_onset,
        "birthplace": birthplace,
        "filename": filename,
        "native_language": cls.native_language,
        "sex": sex,
        "speakerid": speakerid,
        "country": cls.country,
        "file_missing?": "TRUE" if missing else "FALSE",
        "": "",
    }


def _synthesize_all(recordings: Path, seconds, jobs: list[_Job], *, workers, progress) -> None:
    from concurrent.futures import ThreadPoolExecutor

    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_run_job, recordings, seconds, job) for job in jobs]
        done = (f.result() for f in futures)  # in order; raises the first failure
        if not progress:
            for _ in done:
                pass
            return
        from rich.progress import Progress

        with Progress(transient=True) as bar:
            task = bar.add_task("synthesising speakers", total=len(jobs))
            for _ in done:
                bar.advance(task)
