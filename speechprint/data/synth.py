"""A small demo corpus in the Speech Accent Archive layout, made offline with eSpeak NG.

`synthesize_corpus(out_dir)` writes ``speakers_all.csv`` (the real archive's columns) and
``recordings/<filename>.mp3`` for synthetic speakers reading the archive's paragraph. Each class is
an eSpeak NG voice group mapped to a real country (and so to a region through the region table):
English variants, and other languages' voices reading the English text with their own letter-to-
sound rules, which gives a strong, consistent "accent". Every synthetic speaker gets its own voice
variant, pitch, pitch range, speed, word gap, gain and noise floor, so classes vary within.

libespeak-ng comes from the ``espeakng-loader`` wheel (library and voice data), driven through
ctypes in synchronous mode; no system ``espeak`` binary is needed.

Only voices of languages written in the Latin alphabet are used for the non-English classes: voices
for languages written in another script (hi, ru, ar, cmn, fa, ko, ...) switch to the English
voice's rules for Latin-alphabet words, so they would read the paragraph as plain English.
"""

from __future__ import annotations

import atexit
import csv
import ctypes
import itertools
import os
import re
import shutil
import tempfile
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speechprint.errors import ConfigError, SpeechPrintError

__all__ = ["ACCENT_CLASSES", "AccentClass", "paragraph", "synthesize", "synthesize_corpus"]

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


@dataclass(frozen=True)
class AccentClass:
    """One class of the demo corpus: eSpeak NG voices -> a real country and native language."""

    voices: tuple[str, ...]
    country: str
    native_language: str
    birthplaces: tuple[str, ...]
    english_native: bool = False


# Countries are real archive countries in lower case; the region table maps them (in comments, the
# seed table's region each lands in: eight distinct regions, checked by tests/test_synth.py).
ACCENT_CLASSES: tuple[AccentClass, ...] = (
    AccentClass(  # north american
        ("en-us",),
        "usa",
        "english",
        ("pittsburgh, pennsylvania, usa", "davenport, iowa, usa", "miami, florida, usa"),
        english_native=True,
    ),
    AccentClass(  # british isles
        ("en", "en-gb-x-rp", "en-gb-scotland"),
        "uk",
        "english",
        ("london, uk", "manchester, uk", "glasgow, scotland, uk", "edinburgh, scotland, uk"),
        english_native=True,
    ),
    AccentClass(  # caribbean
        ("en-029",),
        "jamaica",
        "english",
        ("kingston, jamaica", "montego bay, jamaica"),
        english_native=True,
    ),
    AccentClass(  # western european non-romance
        ("de",), "germany", "german", ("berlin, germany", "munich, germany", "hamburg, germany")
    ),
    AccentClass(  # romance
        ("es",), "spain", "spanish", ("madrid, spain", "barcelona, spain", "seville, spain")
    ),
    AccentClass(  # eastern european
        ("pl",), "poland", "polish", ("warsaw, poland", "krakow, poland", "gdansk, poland")
    ),
    AccentClass(  # latin american
        ("pt-br",), "brazil", "portuguese", ("sao paulo, brazil", "rio de janeiro, brazil")
    ),
    AccentClass(  # southeast asian
        ("id",), "indonesia", "indonesian", ("jakarta, indonesia", "surabaya, indonesia")
    ),
)

_MALE_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7")
_FEMALE_VARIANTS = ("f1", "f2", "f3", "f4")

# espeak_PARAMETER values from speak_lib.h
_RATE, _VOLUME, _PITCH, _RANGE, _WORDGAP = 1, 2, 3, 4, 7
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1


def paragraph() -> str:
    """The archive's reading passage (whitespace normalised)."""
    text = (Path(__file__).with_name("paragraph.txt")).read_text(encoding="utf-8")
    return " ".join(text.split())


# --------------------------------------------------------------------------------------------
# libespeak-ng through ctypes.
#
# The library keeps global state, and not only the obvious (voice, parameters, callback): its wave
# generator keeps static variables from one utterance to the next (pitch-flutter phase, cycle
# counters, gain control) that neither espeak_Terminate nor espeak_ng_SetRandSeed resets, so the
# same call gives different samples depending on what the process said before. To make every
# utterance a pure function of its arguments, each one is spoken by a private, freshly loaded copy
# of the library (copied to a temporary file: dlopen of the same path would return the loaded
# instance), which is closed afterwards. That costs about 5 ms, and as the copies share nothing,
# threads can speak in parallel (ctypes releases the GIL during the C calls).
_CALLBACK_TYPE = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)
_SHARED_LOCK = threading.Lock()  # guards the shared instance used when private copies fail
_COPY_COUNTER = itertools.count()
_TMP_DIR: str | None = None


def _loader_paths() -> tuple[str, Path]:
    try:
        import espeakng_loader
    except ImportError as exc:
        raise SpeechPrintError(
            "the demo corpus needs eSpeak NG from the 'espeakng-loader' package "
            "(pip install espeakng-loader)"
        ) from exc
    try:
        return espeakng_loader.get_library_path(), Path(espeakng_loader.get_data_path())
    except RuntimeError as exc:
        raise SpeechPrintError(f"the 'espeakng-loader' package is incomplete: {exc}") from exc


def _declare(lib) -> None:
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = [_CALLBACK_TYPE]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetParameter.restype = ctypes.c_int
    lib.espeak_Synth.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    lib.espeak_Synth.restype = ctypes.c_int
    lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
    lib.espeak_ng_SetRandSeed.restype = None
    lib.espeak_Terminate.argtypes = []
    lib.espeak_Terminate.restype = ctypes.c_int


def _private_copy(library: str):
    """A freshly loaded copy of libespeak-ng, or None where copies cannot be loaded (noexec)."""
    global _TMP_DIR
    try:
        if _TMP_DIR is None:
            _TMP_DIR = tempfile.mkdtemp(prefix="speechprint-espeak-")
            atexit.register(shutil.rmtree, _TMP_DIR, ignore_errors=True)
        path = os.path.join(_TMP_DIR, f"libespeak-ng-{os.getpid()}-{next(_COPY_COUNTER)}.so")
        shutil.copyfile(library, path)
        try:
            return ctypes.CDLL(path, mode=ctypes.RTLD_LOCAL)
        finally:
            os.unlink(path)  # the mapping stays valid
    except OSError:
        return None


def _close(lib) -> None:
    try:
        import _ctypes

        _ctypes.dlclose(lib._handle)
    except (ImportError, AttributeError, OSError):  # not fatal: the copy just stays loaded
        pass


def _speak(lib, data_dir: Path, text: str, voice: str, params: dict[int, int], seed: int):
    # `path` is the folder that *contains* espeak-ng-data.
    rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, str(data_dir.parent).encode(), 0)
    if rate <= 0:
        raise RuntimeError(
            "eSpeak NG from the 'espeakng-loader' package failed to initialise "
            f"(espeak_Initialize returned {rate}; data: {data_dir})"
        )
    chunks: list[np.ndarray] = []

    def collect(wav, n_samples, _events) -> int:
        if n_samples > 0 and wav:
            chunks.append(np.ctypeslib.as_array(wav, shape=(n_samples,)).copy())
        return 0  # 0 = go on

    callback = _CALLBACK_TYPE(collect)  # referenced until the end: C keeps only the pointer
    lib.espeak_SetSynthCallback(callback)
    err = lib.espeak_SetVoiceByName(voice.encode())
    if err != 0:  # a failed voice change would silently keep the previous voice
        raise RuntimeError(f"eSpeak NG has no voice {voice!r} (error {err})")
    for param, value in params.items():
        lib.espeak_SetParameter(param, int(value), 0)
    lib.espeak_ng_SetRandSeed(seed & 0x7FFFFFFF)  # breath noise etc.
    data = text.encode("utf-8") + b"\0"
    err = lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
    if err != 0:
        raise RuntimeError(f"espeak_Synth failed with error {err} (voice {voice!r})")
    del callback
    wave = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
    return wave, rate


def synthesize(
    text: str,
    voice: str = "en-us",
    *,
    rate: int = 175,
    pitch: int = 50,
    pitch_range: int = 50,
    gap: int = 0,
    seed: int = 0,
) -> tuple[np.ndarray, int]:
    """Speak `text` with an eSpeak NG voice (``name`` or ``name+variant``, e.g. ``"de+f2"``).

    Returns (int16 samples, sample rate: 22050). `rate` in words per minute, `pitch` and
    `pitch_range` 0-100, `gap` extra pause between words in units of 10 ms, `seed` eSpeak NG's
    random seed. The same arguments give the same samples; safe to call from several threads.
    Raises RuntimeError when eSpeak NG (the 'espeakng-loader' package) is missing or broken, or
    the voice does not exist.
    """
    library, data_dir = _loader_paths()
    params = {_RATE: rate, _PITCH: pitch, _RANGE: pitch_range, _WORDGAP: gap, _VOLUME: 100}
    lib = _private_copy(library)
    if lib is not None:
        _declare(lib)
        try:
            return _speak(lib, data_dir, text, voice, params, seed)
        finally:
            lib.espeak_Terminate()
            _close(lib)
    # No loadable private copy (e.g. a noexec temporary folder): share the package's instance,
    # one utterance at a time. Output then depends slightly on earlier utterances.
    with _SHARED_LOCK:
        try:
            lib = ctypes.CDLL(library)
        except OSError as exc:
            raise RuntimeError(
                f"could not load libespeak-ng from the 'espeakng-loader' package: {exc}"
            ) from exc
        _declare(lib)
        try:
            return _speak(lib, data_dir, text, voice, params, seed)
        finally:
            lib.espeak_Terminate()


# --------------------------------------------------------------------------------------------
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

    rng = np.random.default_rng(seed)
    n_speakers = len(ACCENT_CLASSES) * speakers_per_class
    speaker_ids = (rng.permutation(n_speakers + 2) + 1 + int(rng.integers(0, 500))).tolist()
    counters: dict[str, int] = {}
    rows: list[dict] = []
    jobs_list: list[_Job] = []
    for cls in ACCENT_CLASSES:
        flip = int(rng.integers(2))  # which sex comes first: classes stay balanced
        for i in range(speakers_per_class):
            n = counters[cls.native_language] = counters.get(cls.native_language, 0) + 1
            filename = f"{cls.native_language}{n}"
            srng = _speaker_rng(seed, filename)
            female = (i + flip) % 2 == 1
            variants = _FEMALE_VARIANTS if female else _MALE_VARIANTS
            variant = variants[int(srng.integers(len(variants)))]
            jobs_list.append(
                _Job(
                    filename=filename,
                    voice=f"{cls.voices[i % len(cls.voices)]}+{variant}",
                    rate=int(srng.integers(135, 200)),  # words per minute (eSpeak default 175)
                    pitch=int(srng.integers(30, 71)),  # 0-100 (default 50)
                    pitch_range=int(srng.integers(25, 86)),  # 0-100 (default 50)
                    gap=int(srng.integers(0, 3)),  # extra pause between words, x 10 ms
                    espeak_seed=int(srng.integers(2**31)),
                    render_seed=int(srng.integers(2**63)),
                )
            )
            age = int(srng.integers(18, 71))
            rows.append(
                _row(
                    cls,
                    age=age,
                    age_onset=0 if cls.english_native else int(srng.integers(4, min(age, 25) + 1)),
                    birthplace=cls.birthplaces[int(srng.integers(len(cls.birthplaces)))],
                    filename=filename,
                    sex="female" if female else "male",
                    speakerid=speaker_ids.pop(),
                    missing=False,
                )
            )

    # Real downloads list speakers whose recording is not there.
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

    _synthesize_all(recordings, seconds, jobs_list, workers=jobs, progress=progress)

    rows.sort(key=lambda r: (r["native_language"], r["filename"]))
    with open(out / "speakers_all.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(rows)
    return out


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
