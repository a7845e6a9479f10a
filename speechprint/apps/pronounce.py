"""``speechprint pronounce``: one recording's learner's page, the sounds that differ from native
readers, with its audio playable word by word.

The phonetic part needs no accent model: the recording is aligned to its text (the passage by
default), every expected phoneme's slot is read (``features.slots.hear``), and a slot is marked
when what was heard there is rare among the archive's native-English readers at the same slot
of the passage (``data/native-sounds.json``, measured by ``benchmarks/sounds_saa8k.py``), or,
for another text, for the same expected phoneme. A model, when given, adds the regions it hears.
The page (``pronounce_page``) embeds its figure and every audio clip, so it opens from disk.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from speechprint.apps.pronounce_page import write_page
from speechprint.data.archive import reading_passage
from speechprint.data.audio import load_audio
from speechprint.features.alignment import posterior_extractor
from speechprint.features.frames import WHISPER_SR
from speechprint.features.slots import Slot, hear
from speechprint.findings.sounds import flag_slots, reference_of
from speechprint.text.g2p import text_words
from speechprint.text.lexicon import Word

logger = logging.getLogger(__name__)
REFERENCE_FILE = "native-sounds.json"


@dataclass
class WordReport:
    word: Word
    start: float  # seconds, NaN when not aligned
    end: float
    status: str
    slots: list[Slot]
    flags: list[bool]
    native: list[float]  # per slot, the share of native readers heard saying the same

    @property
    def flagged(self) -> int:
        return sum(self.flags)

    @property
    def gop(self) -> float:
        values = [s.gop for s in self.slots if np.isfinite(s.gop)]
        return float(np.mean(values)) if values else float("nan")


@dataclass
class Pronounced:
    recording: Path
    text: str
    words: list[WordReport]
    aligned_share: float
    regions: list[dict[str, Any]] = field(default_factory=list)  # [{"label", "probability"}]
    model: str | None = None
    reference: str = ""  # what the slots were judged against
    seconds: dict[str, float] = field(default_factory=dict)
    page: Path | None = None


def native_sounds() -> dict[str, dict[str, dict]]:
    """The shipped reference (empty when the package has none: every change is then marked)."""
    source = resources.files("speechprint.data").joinpath(REFERENCE_FILE)
    if not source.is_file():
        logger.warning(
            "no %s in the package: slots are judged against the text alone", REFERENCE_FILE
        )
        return {"slots": {}, "phonemes": {}}
    return json.loads(source.read_text(encoding="utf-8"))


def pronounce(
    recording: str | Path,
    out: str | Path,
    *,
    text: str | None = None,
    model_uri: str | None = None,
    top_k: int = 5,
) -> Pronounced:
    """Write ``out`` (one HTML page) for ``recording``; ``text`` defaults to the passage."""
    recording, out = Path(recording), Path(out)
    timings: dict[str, float] = {}
    began = time.perf_counter()
    wave = load_audio(recording, WHISPER_SR)
    timings["decode"] = time.perf_counter() - began
    passage = text is None
    text = reading_passage() if text is None else text
    words = text_words(text)
    began = time.perf_counter()
    log_probs = posterior_extractor().transform(wave)
    timings["recogniser"] = time.perf_counter() - began
    alignment, slots = hear(log_probs, words)
    native = native_sounds()
    reference = reference_of(native, slots, same_text=passage)
    flags = flag_slots(slots, reference)
    reports = _word_reports(alignment, slots, flags, reference)
    result = Pronounced(recording, text, reports, alignment.aligned_share, model=model_uri)
    result.reference = _reference_note(native, passage)
    if model_uri is not None:
        # Lazy: predicting loads MLflow and torch (about 9 s cold), which the sounds never need.
        from speechprint.apps.predict import predict_files

        began = time.perf_counter()
        answer = predict_files([recording], model_uri=model_uri, top_k=top_k, text=text)[0]
        result.regions = answer.get("top", [])
        timings["model"] = time.perf_counter() - began
    began = time.perf_counter()
    result.page = write_page(result, wave, WHISPER_SR, out)
    timings["page"] = time.perf_counter() - began
    result.seconds = timings
    return result


def _word_reports(
    alignment: Any, slots: list[Slot], flags: list[bool], reference: dict
) -> list[WordReport]:
    by_word: dict[int, list[int]] = {}
    for n, slot in enumerate(slots):
        by_word.setdefault(slot.word, []).append(n)
    reports = []
    for word, span in zip(alignment.words, alignment.word_spans, strict=True):
        members = by_word.get(word.index, [])
        own = [slots[n] for n in members]
        native = [reference.get((s.word, s.index), {}).get(s.heard, 0.0) for s in own]
        reports.append(
            WordReport(
                word, span.start, span.end, span.status, own, [flags[n] for n in members], native
            )
        )
    return reports


def _reference_note(native: dict, passage: bool) -> str:
    if not native["slots"] and not native["phonemes"]:
        return "no native reference shipped: every sound heard otherwise than expected is marked"
    if passage:
        return "the archive's native-English readers at the same place of the passage"
    return "the archive's native-English readers, for the same expected sound"
