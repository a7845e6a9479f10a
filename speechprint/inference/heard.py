"""What a recording says, for a prediction: the transcript used and how much of it was found.

A prediction says what it listened to. The transcript is a text the caller gave, else what
Whisper base recognised; when that is the archive's paragraph (most of what was heard lies in it,
in order), the transcript used is the passage itself. Its words are aligned on the phoneme
recogniser's posteriors (``phone_alignment.align_text``): ``aligned_share`` is the share found.

Models whose features assume the passage (``whisper_words``: one group per passage word) get
utterance means for every word of any other text. The ``note`` says so, and an ensemble leans on
its members that do not need the passage (``inference.ensemble``).
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from speechprint.data.archive import reading_passage
from speechprint.features.phone_alignment import align_text
from speechprint.features.pretrained.phones import hama_posteriors, whisper_pass
from speechprint.features.pretrained.whisper import load_whisper
from speechprint.text.g2p import normalise, text_words

log = logging.getLogger(__name__)

# Extractors whose vectors are laid out by the passage's words.
PASSAGE_EXTRACTORS = frozenset({"whisper_words"})
# A transcript is the passage when at least this share of its words match the passage in order
# (Whisper's slips and a reader's own words leave room; another text matches a few "the"s).
PASSAGE_MATCH = 0.6
MIN_PASSAGE_WORDS = 3
PASSAGE, GIVEN, WHISPER = "passage", "given", "whisper"


@dataclass(frozen=True)
class Hearing:
    transcript: str | None  # the text the alignment used; None when nothing could be heard
    source: str  # passage, given or whisper ("" when not heard)
    aligned_share: float | None  # share of the transcript's words aligned in the recording
    is_passage: bool | None  # whether the recording reads the archive's paragraph
    heard: str | None = None  # Whisper's own words (None when a text was given)
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def needs_passage(extractor_name: str, params: dict[str, Any] | None = None) -> bool:
    """Whether an extractor (a fusion: any of its parts) lays its features out by the passage."""
    if extractor_name in PASSAGE_EXTRACTORS:
        return True
    parts = (params or {}).get("parts") or []
    return any(
        needs_passage(str(p.get("name", "")), p.get("params")) for p in parts if isinstance(p, dict)
    )


def passage_match(text: str) -> float:
    """Share of ``text``'s words that match the passage's words in order (0 for no words)."""
    words = [w for w, _ in normalise(text)]
    if not words:
        return 0.0
    passage = [w for w, _ in normalise(reading_passage())]
    matcher = difflib.SequenceMatcher(a=words, b=passage, autojunk=False)
    matched = sum(block.size for block in matcher.get_matching_blocks())
    return matched / len(words) if matched >= MIN_PASSAGE_WORDS else 0.0


def hear(wave: np.ndarray, text: str | None = None, *, model: str = "base") -> Hearing:
    """Transcript, passage or not, and aligned share for one 16 kHz recording (the
    ``[pretrained]`` extra: Whisper base and the phoneme recogniser)."""
    heard = None
    if text is None or not text.strip():
        _, heard = whisper_pass(wave, load_whisper(model, "int8"), recognise=True)
        text = None
    said = text if text is not None else heard or ""
    is_passage = passage_match(said) >= PASSAGE_MATCH
    transcript = reading_passage() if is_passage else said
    source = PASSAGE if is_passage else (GIVEN if text is not None else WHISPER)
    share = None
    if transcript.strip():
        share = align_text(hama_posteriors(wave), text_words(transcript)).aligned_share
    return Hearing(transcript or None, source, share, is_passage, heard)


def not_heard(reason: str, text: str | None = None) -> Hearing:
    """A prediction made without listening for the words (no recogniser installed, say); a
    given ``text`` is still reported, unaligned."""
    if text is not None:
        is_passage = passage_match(text) >= PASSAGE_MATCH
        note = f"the words were not aligned: {reason}"
        return Hearing(text, GIVEN, None, is_passage, None, note=note)
    return Hearing(None, "", None, None, None, note=f"what was said is unknown: {reason}")


def passage_note(hearing: Hearing, extractor_name: str, leaned_on: list[str] | None) -> str:
    """What the answer means when the model's features need the passage and this is not it."""
    verb = "it says" if hearing.source == GIVEN else "heard"
    said = f"{verb} {hearing.transcript!r}" if hearing.transcript else "heard no words"
    base = (
        f"this recording is not the archive's passage ({said}); {extractor_name} lays its "
        "features out by the passage's words, so every word group falls back to the "
        "utterance mean"
    )
    if leaned_on is None:
        return base + ": the prediction rests on utterance statistics alone"
    if not leaned_on:
        return base + ": every member of the ensemble needs the passage, all were averaged"
    return (
        base
        + ": the ensemble averaged only its members that do not need it ("
        + (", ".join(leaned_on) + ")")
    )
