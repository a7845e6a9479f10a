"""``phones``: a pronunciation profile any English speech has, whatever its text.

One pass over the audio (``analyse``): hama's phoneme posteriors, Whisper base's encoder frames,
Whisper's recognition of the text when none is given (from the same encoder pass), the text's
words and phonemes aligned (``phone_alignment.align_text``), then per phoneme of
``ENGLISH_PHONEMES`` over every aligned occurrence: the mean final-layer frame of its segments
(as ``whisper_words`` pools per word), its mean GOP, its mean duration and its count. A phoneme
that never occurred is zeros with count 0. Only the final vector is cached (no frames, no
posteriors), and what was heard is written beside it (``FeatureSet.transcripts``).

Cost (``benchmarks/bench_phonetic.py``): both models take short inputs as they are instead of
30 s windows. hama's attention is quadratic, so it runs on 8 s windows with 0.5 s of context
each side (CPU seconds per minute of saa8k audio: 3.9 with today's 30 s windows, 3.4 with 10 s
+ 1 s, 3.1 with 8 s + 0.5 s); Whisper's encoder takes the recording plus at least 1 s of
silence, rounded up to 5 s (a 3 s clip: ~0.15 s instead of 1.5 s), and the windows of a chunk
of files are encoded and decoded in batches. Frames of such trimmed
inputs are not those of a 30 s window, so they are this extractor's own, not ``whisper_encoder``'s.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from speechprint.core.errors import ConfigError
from speechprint.features.base import FEATURES, Extractor
from speechprint.features.phone_alignment import ALIGNED, Alignment, align_text
from speechprint.features.pretrained.common import (
    HOP,
    SAMPLES_PER_ENCODER_FRAME,
    WHISPER_SR,
    WINDOW_SAMPLES,
    import_ctranslate2,
)
from speechprint.features.pretrained.phonemes import load_phoneme_recogniser
from speechprint.features.pretrained.recognise import recognise_encoded
from speechprint.features.pretrained.whisper import DIMS, load_whisper, whisper_log_mel
from speechprint.text.g2p import ENGLISH_PHONEMES, load_lexicon, text_words

HAMA_HOP = 8 * WHISPER_SR  # samples per hama window, plus HAMA_CONTEXT on each side
HAMA_CONTEXT = WHISPER_SR // 2
WHISPER_PAD = WHISPER_SR  # silence after the audio, so its last sound has context
BUCKET_SECONDS = 5  # trimmed Whisper inputs are a multiple of this (windows batch by length)
WHISPER_BATCH = 8
FRAME_SECONDS = SAMPLES_PER_ENCODER_FRAME / WHISPER_SR
STATS = 3  # gop, duration, count


@dataclass(frozen=True)
class Heard:
    """One recording analysed: the transcript used, how much of it was found, the profile."""

    text: str
    source: str  # "given" or "whisper"
    alignment: Alignment
    vector: np.ndarray

    @property
    def aligned_share(self) -> float:
        return self.alignment.aligned_share

    def info(self) -> dict[str, Any]:
        return {"text": self.text, "source": self.source, "aligned_share": self.aligned_share}


def hama_posteriors(wave: np.ndarray) -> np.ndarray:
    """``(ceil(samples / 320), 191)`` log-posteriors at 50 frames/s from ``HAMA_HOP`` windows
    with ``HAMA_CONTEXT`` each side (only each window's own frames are kept)."""
    recogniser = load_phoneme_recogniser()
    wave = np.clip(np.asarray(wave, dtype=np.float32).reshape(-1), -1.0, 1.0)
    total = max(1, math.ceil(len(wave) / SAMPLES_PER_ENCODER_FRAME))
    parts = []
    for start in range(0, max(len(wave), 1), HAMA_HOP):
        left = max(0, start - HAMA_CONTEXT)
        window = wave[left : start + HAMA_HOP + HAMA_CONTEXT].reshape(1, -1)
        if window.shape[1] < 400:  # below one analysis frame: pad with silence
            window = np.pad(window, ((0, 0), (0, 400 - window.shape[1])))
        log_probs, lengths = recogniser.session.run(
            [recogniser._log_probs_output_name, recogniser._out_lengths_output_name],
            {
                recogniser._waveform_input_name: window,
                recogniser._waveform_lengths_input_name: np.array([window.shape[1]], np.int64),
            },
        )
        valid = int(np.asarray(lengths).reshape(-1)[0])
        skip = (start - left) // SAMPLES_PER_ENCODER_FRAME
        parts.append(
            np.asarray(
                log_probs[0][skip : min(valid, skip + HAMA_HOP // SAMPLES_PER_ENCODER_FRAME)]
            )
        )
    frames = np.concatenate(parts)[:total]
    if len(frames) < total:
        frames = np.concatenate([frames, np.repeat(frames[-1:], total - len(frames), axis=0)])
    return frames.astype(np.float32, copy=False)


def trimmed_mel_frames(n_samples: int) -> int:
    """Whisper's input length for a window of ``n_samples``: the audio plus ``WHISPER_PAD``,
    rounded up to ``BUCKET_SECONDS`` (so windows of one length batch together) and at most 30 s.
    A window's frames depend on its own audio only, never on the files batched with it."""
    bucket = BUCKET_SECONDS * WHISPER_SR // HOP  # mel frames
    return min(3000, bucket * math.ceil((n_samples + WHISPER_PAD) / (bucket * HOP)))


def whisper_pass(wave: np.ndarray, model: Any, recognise: bool) -> tuple[np.ndarray, str]:
    """``whisper_pass_many`` of one wave: its frames and (if asked) what Whisper heard."""
    return whisper_pass_many([wave], model, [recognise])[0]


def whisper_pass_many(
    waves: list[np.ndarray], model: Any, recognise: list[bool]
) -> list[tuple[np.ndarray, str]]:
    """Per wave: final-layer frames ``(ceil(samples / 320), d)`` and, where ``recognise`` asks,
    the recognised text (else ""). One encoder pass per 30 s window (the last one trimmed:
    ``trimmed_mel_frames``), windows of one length encoded and decoded ``WHISPER_BATCH`` at a
    time: batched greedy decoding costs ~2.6x less CPU than one window at a time."""
    ctranslate2 = import_ctranslate2()
    waves = [np.asarray(w, dtype=np.float32).reshape(-1) for w in waves]
    windows = [
        (i, s) for i, w in enumerate(waves) for s in range(0, max(len(w), 1), WINDOW_SAMPLES)
    ]
    chunk = {(i, s): waves[i][s : s + WINDOW_SAMPLES] for i, s in windows}
    by_length: dict[int, list[tuple[int, int]]] = {}
    for window in windows:
        by_length.setdefault(trimmed_mel_frames(len(chunk[window])), []).append(window)
    frames: dict[tuple[int, int], np.ndarray] = {}
    texts: dict[tuple[int, int], str] = {}
    for length, members in by_length.items():
        for b in range(0, len(members), WHISPER_BATCH):
            batch = members[b : b + WHISPER_BATCH]
            mels = np.stack([whisper_log_mel(chunk[w])[:, :length] for w in batch])
            encoded = model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mels)))
            array = np.asarray(encoded)
            for k, window in enumerate(batch):
                frames[window] = array[
                    k, : math.ceil(len(chunk[window]) / SAMPLES_PER_ENCODER_FRAME)
                ]
            asked = [k for k, (i, _) in enumerate(batch) if recognise[i]]
            if asked:
                view = encoded
                if len(asked) < len(batch):
                    view = ctranslate2.StorageView.from_array(np.ascontiguousarray(array[asked]))
                seconds = max(len(chunk[batch[k]]) for k in asked) / WHISPER_SR
                for k, text in zip(asked, recognise_encoded(model, view, seconds), strict=True):
                    texts[batch[k]] = text
    out = []
    for i, wave in enumerate(waves):
        own = [w for w in windows if w[0] == i]
        total = max(1, math.ceil(len(wave) / SAMPLES_PER_ENCODER_FRAME))
        stacked = np.concatenate([frames[w] for w in own])[:total].astype(np.float32, copy=False)
        out.append((stacked, " ".join(texts[w] for w in own if texts.get(w))))
    return out


def profile(frames: np.ndarray, alignment: Alignment) -> np.ndarray:
    """The fixed-size vector: per phoneme mean frame, then GOP, duration and count per phoneme."""
    index = {p: i for i, p in enumerate(ENGLISH_PHONEMES)}
    n, dim = len(ENGLISH_PHONEMES), frames.shape[1]
    sums, n_frames = np.zeros((n, dim)), np.zeros(n)
    gop, duration, count = np.zeros(n), np.zeros(n), np.zeros(n)
    for phone in alignment.phones:
        if phone.status != ALIGNED or phone.phoneme not in index:
            continue
        i = index[phone.phoneme]
        first = min(int(phone.start / FRAME_SECONDS), len(frames) - 1)
        last = max(first + 1, int(math.ceil(phone.end / FRAME_SECONDS)))
        segment = frames[first:last]
        sums[i] += segment.sum(axis=0)
        n_frames[i] += len(segment)
        gop[i] += phone.gop
        duration[i] += phone.end - phone.start
        count[i] += 1
    seen = count > 0
    means = np.divide(sums, np.maximum(n_frames, 1)[:, None])
    gop[seen] /= count[seen]
    duration[seen] /= count[seen]
    return np.concatenate([means.ravel(), gop, duration, count]).astype(np.float32)


def analyse(
    wave: np.ndarray,
    text: str | None = None,
    *,
    lexicon: dict[str, tuple[str, ...]] | None = None,
    model: str = "base",
    compute_type: str = "int8",
) -> Heard:
    """One 16 kHz recording: what was heard (``text``, else Whisper's), its alignment, its
    ``phones`` vector."""
    return analyse_many([wave], [text], lexicon=lexicon, model=model, compute_type=compute_type)[0]


def analyse_many(
    waves: list[np.ndarray],
    texts: list[str | None],
    *,
    lexicon: dict[str, tuple[str, ...]] | None = None,
    model: str = "base",
    compute_type: str = "int8",
) -> list[Heard]:
    """``analyse`` of each wave, Whisper's windows batched across them (same results)."""
    whisper = load_whisper(model, compute_type)
    passes = whisper_pass_many(waves, whisper, [text is None for text in texts])
    out = []
    for wave, text, (frames, heard) in zip(waves, texts, passes, strict=True):
        used, source = (text, "given") if text is not None else (heard, "whisper")
        alignment = align_text(hama_posteriors(wave), text_words(used, lexicon))
        out.append(Heard(used, source, alignment, profile(frames, alignment)))
    return out


@FEATURES.register("phones", extra="pretrained")
@dataclass
class Phones(Extractor):
    """``(41 * d_model + 3 * 41,)`` float32: per phoneme of ``ENGLISH_PHONEMES`` the mean
    Whisper frame of its aligned segments (phoneme-major), then 41 mean GOPs, 41 mean durations
    (seconds), 41 counts. ``lexicon``: a user lexicon file (``word<TAB>phonemes``)."""

    version = 1
    kind = "pooled"
    uses_text: ClassVar[bool] = True  # extract_features passes each file's text (or None)
    # The cache holds float16, and only the frame rows of phonemes that occurred (``pack``):
    # ~42 KB a recording whole, ~14 KB for a 3 s so762 clip (15 MB instead of 44 MB an hour).
    storage_dtype: ClassVar[str] = "float16"

    sample_rate: int = WHISPER_SR
    model: str = "base"
    compute_type: str = "int8"
    lexicon: str = ""

    def __post_init__(self) -> None:
        if self.sample_rate != WHISPER_SR:
            raise ConfigError(f"phones needs sample_rate={WHISPER_SR}")
        if self.model not in DIMS:
            raise ConfigError(f"phones: model must be one of {', '.join(DIMS)}, got {self.model!r}")

    def transform(self, wave: np.ndarray) -> np.ndarray:
        return self.analyse(wave, None).vector

    def transform_texts(self, waves: list[np.ndarray], texts: list[str | None]) -> list[Heard]:
        """One ``Heard`` per wave (``None`` text: Whisper's recognition)."""
        lexicon = _user_lexicon(self.lexicon) if self.lexicon else None
        return analyse_many(
            waves, texts, lexicon=lexicon, model=self.model, compute_type=self.compute_type
        )

    def analyse(self, wave: np.ndarray, text: str | None) -> Heard:
        return self.transform_texts([wave], [text])[0]

    def output_dim(self) -> int:
        return len(ENGLISH_PHONEMES) * (DIMS[self.model][0] + STATS)

    def pack(self, vector: np.ndarray) -> np.ndarray:
        """The frame rows of phonemes with count > 0, then the stats: absent rows are zeros."""
        if len(vector) != self.output_dim():
            return vector
        parts = profile_parts(vector, DIMS[self.model][0])
        stats = vector[-STATS * len(ENGLISH_PHONEMES) :]
        return np.concatenate([parts["frames"][parts["count"] > 0].ravel(), stats])

    def unpack(self, stored: np.ndarray) -> np.ndarray:
        """The whole vector from ``pack``'s rows and the counts; a whole vector as it is."""
        n, dim = len(ENGLISH_PHONEMES), DIMS[self.model][0]
        if len(stored) == self.output_dim():
            return stored
        rows, stats = np.asarray(stored[: -STATS * n]), np.asarray(stored[-STATS * n :])
        seen = stats[-n:] > 0
        if len(stats) != STATS * n or len(rows) != int(seen.sum()) * dim:
            raise ValueError(f"not a packed phones entry: {len(stored)} values")
        frames = np.zeros((n, dim), dtype=stored.dtype)
        frames[seen] = rows.reshape(-1, dim)
        return np.concatenate([frames.ravel(), stats])


@functools.lru_cache(maxsize=8)
def _user_lexicon(path: str) -> dict[str, tuple[str, ...]]:
    """Read once per process, not once per recording."""
    return load_lexicon(path)


def profile_parts(vector: np.ndarray, dim: int = DIMS["base"][0]) -> dict[str, np.ndarray]:
    """A ``phones`` vector split: ``frames`` (41, d), ``gop``, ``duration``, ``count`` (41,)."""
    n = len(ENGLISH_PHONEMES)
    frames = np.asarray(vector[: n * dim]).reshape(n, dim)
    gop, duration, count = np.asarray(vector[n * dim :]).reshape(STATS, n)
    return {"frames": frames, "gop": gop, "duration": duration, "count": count}
