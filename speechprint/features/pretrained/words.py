"""``whisper_words``: Whisper frames pooled word by word over the passage every speaker reads.

An utterance's mean + std statistics mix every sound of the paragraph; here each of its 69 words
gets its own mean of Whisper encoder frames, so a model compares the same word across speakers
(content held fixed, only the accent varies). Words come from the forced alignment that
``findings`` uses (CTC Viterbi over ``phoneme_posteriors``, ``passage/align.py``); a word that
was skipped, unsure or not reached takes the utterance mean, so a vector never holds a guess.

The output is group-major: ``[utterance mean, utterance std, word 0, ..., word 68]``, each
``d_model`` wide (``layer_groups()`` says how many), which ``word_probe`` reduces group by group.
Measured on saa8k's development speakers before this extractor existed (4-fold cv, class-balanced
logistic regression, Whisper base): utterance statistics 0.490; words reduced to 32 principal
components each 0.525; both together 0.542.

``findings`` measures a word's evidence on these vectors by ``without_word``: its group set to the
utterance mean, as if the word carried nothing of its own.

Over files both sources come from their own caches (``features/derived.py``): the frames of
``whisper_encoder`` and the posteriors of ``phoneme_posteriors``, as if a study had named them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from speechprint.core.errors import ConfigError
from speechprint.features.alignment import ALIGNED, align_words, posterior_extractor
from speechprint.features.base import FEATURES, Extractor, make_extractor
from speechprint.features.cache import FeatureCache
from speechprint.features.derived import ExtractPart, Outcome, derived_outcomes
from speechprint.features.pretrained.common import SAMPLES_PER_ENCODER_FRAME, WHISPER_SR
from speechprint.features.pretrained.whisper import DIMS
from speechprint.text.lexicon import passage_words

UTTERANCE_GROUPS = 2  # mean, std


@FEATURES.register("whisper_words")
@dataclass
class WhisperWords(Extractor):
    """``((2 + passage words) * d_model,)`` float32: utterance mean and std, then each word's
    mean frame (the utterance mean where the word was not aligned). ``model``: tiny.en or base;
    ``frame_stride`` of the encoder frames (2 = 25 frames/s)."""

    version = 1
    kind = "pooled"

    sample_rate: int = WHISPER_SR
    model: str = "base"
    frame_stride: int = 2
    # Over files, take the frames and posteriors from their own caches (written if missing: about
    # 440 MB per hour of audio), or (False) compute them in one pass from the audio and cache
    # only the vector, as float16, its fallback words left out (``pack``). The same vector
    # either way (to float16's precision), so not in the cache key.
    cache_sources: bool = field(default=True, compare=False)

    def __post_init__(self) -> None:
        if self.model not in DIMS:
            raise ConfigError(
                f"whisper_words: model must be one of {', '.join(DIMS)}, got {self.model!r}"
            )
        if self.sample_rate != WHISPER_SR:
            raise ConfigError(f"whisper_words needs sample_rate={WHISPER_SR}")

    @property
    def storage_dtype(self) -> str:
        """One pass caches only the vectors: as float16 (~9 MB per hour of archive audio)."""
        return "float32" if self.cache_sources else "float16"

    def params(self) -> dict[str, Any]:
        params = super().params()
        params.pop("cache_sources")
        return params

    def pack(self, vector: np.ndarray) -> np.ndarray:
        """One pass (``cache_sources`` False): a 0/1 mask of the aligned words, then the mean,
        the std and the aligned words' groups; the others equal the mean exactly, so they are
        not stored. Cached sources keep the whole vector (mapped by lazy features)."""
        if self.cache_sources or len(vector) != self.output_dim():
            return vector
        groups = np.asarray(vector).reshape(group_count(), -1)
        aligned = (groups[UTTERANCE_GROUPS:] != groups[0]).any(axis=1)
        kept = groups[np.concatenate([[True] * UTTERANCE_GROUPS, aligned])]
        return np.concatenate([aligned.astype(vector.dtype), kept.ravel()])

    def unpack(self, stored: np.ndarray) -> np.ndarray:
        """The whole vector from ``pack``'s form (either setting may read it); a whole one as is."""
        if len(stored) == self.output_dim():
            return stored
        words, dim = group_count() - UTTERANCE_GROUPS, DIMS[self.model][0]
        aligned = np.asarray(stored[:words]) > 0.5
        kept = np.asarray(stored[words:])
        if len(kept) != (UTTERANCE_GROUPS + int(aligned.sum())) * dim:
            raise ValueError(f"not a packed whisper_words entry: {len(stored)} values")
        kept = kept.reshape(-1, dim)
        groups = np.repeat(kept[:1], group_count(), axis=0)  # fallback words: the mean
        groups[:UTTERANCE_GROUPS] = kept[:UTTERANCE_GROUPS]
        groups[UTTERANCE_GROUPS:][aligned] = kept[UTTERANCE_GROUPS:]
        return groups.ravel()

    def sources(self) -> list[Extractor]:
        """The encoder's frames and the phoneme posteriors the words are aligned on."""
        return [
            make_extractor(
                "whisper_encoder", {"model": self.model, "frame_stride": self.frame_stride}
            ),
            posterior_extractor(),
        ]

    def transform(self, wave: np.ndarray) -> np.ndarray:
        frames, posteriors = (source.transform(wave) for source in self.sources())
        return self.pool(frames, posteriors)

    def compose_files(
        self, misses: list[tuple[str, str]], cache: FeatureCache, extract_part: ExtractPart
    ) -> list[Outcome] | None:
        if not self.cache_sources:
            return None  # extract_features then runs ``transform`` on each file
        paths = [path for path, _ in misses]
        parts = [extract_part(paths, source) for source in self.sources()]
        return derived_outcomes(misses, cache, parts, lambda arrays: self.pool(*arrays))

    def pool(self, frames: np.ndarray, posteriors: np.ndarray) -> np.ndarray:
        """One recording's group-major vector from its encoder frames and log-posteriors."""
        spans = align_words(posteriors)
        frames = np.asarray(frames, dtype=np.float32)
        mean = frames.mean(axis=0)
        groups = [mean, frames.std(axis=0)] + [mean] * len(spans)
        frame_seconds = self.frame_stride * SAMPLES_PER_ENCODER_FRAME / WHISPER_SR
        for span in spans:
            if span.status != ALIGNED:
                continue
            first = int(span.start / frame_seconds)
            last = max(first + 1, int(np.ceil(span.end / frame_seconds)))
            if first < len(frames):
                groups[UTTERANCE_GROUPS + span.index] = frames[first:last].mean(axis=0)
        return np.concatenate(groups).astype(np.float32)

    def layer_groups(self) -> int:
        return group_count()

    def output_dim(self) -> int:
        return DIMS[self.model][0] * self.layer_groups()


def group_count() -> int:
    """Groups of a ``whisper_words`` vector: utterance mean and std, then each passage word."""
    return UTTERANCE_GROUPS + len(passage_words())


def without_word(vector: np.ndarray, index: int) -> np.ndarray:
    """The recording as if word ``index`` were heard as its average frame: that word's group set
    to the utterance mean (how ``findings`` measures a word's evidence on these vectors)."""
    out = np.array(vector, dtype=np.float32)
    groups = out.reshape(group_count(), -1)  # a view: writes land in ``out``
    groups[UTTERANCE_GROUPS + index] = groups[0]
    return out
