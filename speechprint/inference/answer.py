"""One input row -> one answer row: the accent probabilities and what the recording said.

Each answer carries the transcript used (the passage, a given ``text``, or Whisper's recognition),
where it came from, the share of its words aligned in the recording, and a ``note`` when the
answer means less than it seems: a model whose features need the passage, asked about another
text. An ensemble then averages only its members that do not need the passage.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from speechprint.data.audio import AudioError, load_audio, prepare_waveform
from speechprint.features.pretrained.common import WHISPER_SR
from speechprint.inference.ensemble import EnsembleClassifier, uses_passage
from speechprint.inference.heard import (
    GIVEN,
    PASSAGE_MATCH,
    Hearing,
    hear,
    not_heard,
    passage_match,
    passage_note,
)

log = logging.getLogger(__name__)

ANSWER_COLUMNS = ["transcript", "transcript_source", "aligned_share", "note"]


def answer_row(
    classifier: Any, record: dict[str, Any], index: int, *, top_k: int, listen: bool = True
) -> dict[str, Any]:
    """Predict one row (``path``, or ``waveform`` + ``sample_rate``; optional ``text``)."""
    text = _text(record.get("text"))
    path = record.get("path")
    source = str(path) if path is not None else str(record.get("name", f"waveform-{index}"))
    try:
        if path is not None:
            wave, rate = (load_audio(path, WHISPER_SR), WHISPER_SR) if listen else (None, 0)
        else:
            wave = np.asarray(record["waveform"], dtype=np.float32)
            rate = int(record["sample_rate"])
    except AudioError as error:
        return error_row(source, error.reason)
    except Exception as error:  # noqa: BLE001 - a malformed waveform row is reported, not raised
        return error_row(source, str(error))
    hearing = listen_to(wave, rate, text) if listen else unheard(text)
    model, note = model_for(classifier, hearing)
    try:
        if path is not None:
            proba, errors = model.predict_proba_files([str(path)])
            if errors:
                return error_row(source, str(next(iter(errors.values()))))
            probs = np.asarray(proba[0], dtype=float)
        else:
            probs = np.asarray(model.predict_proba_waveform(wave, rate), dtype=float)
    except Exception as error:  # noqa: BLE001 - reported per row, like the batch always did
        return error_row(source, str(error))
    return {**ranked(source, list(classifier.labels), probs, top_k), **columns(hearing, note)}


def listen_to(wave: np.ndarray | None, rate: int, text: str | None) -> Hearing:
    """What the recording says; a missing extra or a recogniser failure is a note, not an error
    (the accent prediction does not depend on it)."""
    try:
        wave16 = prepare_waveform(np.asarray(wave, dtype=np.float32), rate, WHISPER_SR)
        return hear(wave16, text)
    except ImportError as error:
        return not_heard(f"the [pretrained] extra is not installed ({error})", text)
    except Exception as error:  # noqa: BLE001 - listening is a side answer, keep predicting
        log.warning("could not listen for the words: %s", error)
        return not_heard(str(error), text)


def unheard(text: str | None) -> Hearing:
    """Listening switched off: a given text is reported as given, nothing is aligned."""
    if text is None:
        return not_heard("listening is off")
    return Hearing(text, GIVEN, None, passage_match(text) >= PASSAGE_MATCH, None, note="")


def model_for(classifier: Any, hearing: Hearing) -> tuple[Any, str]:
    """The classifier to ask, and the note to give, for a recording that may not be the passage."""
    if hearing.is_passage is not False or not uses_passage(classifier):
        return classifier, hearing.note
    if isinstance(classifier, EnsembleClassifier):
        lean = classifier.without_passage()
        used = [] if lean is None else [m.extractor_name for m in lean.members]
        note = passage_note(hearing, _passage_names(classifier), used)
        return (lean if lean is not None else classifier), note
    return classifier, passage_note(hearing, classifier.extractor_name, None)


def _passage_names(ensemble: EnsembleClassifier) -> str:
    names = sorted({m.extractor_name for m in ensemble.members if uses_passage(m)})
    return ", ".join(names)


def columns(hearing: Hearing, note: str) -> dict[str, Any]:
    share = hearing.aligned_share
    return {
        "transcript": hearing.transcript,
        "transcript_source": hearing.source or None,
        "aligned_share": None if share is None else round(float(share), 4),
        "note": note,
    }


def ranked(source: str, labels: list[str], probs: np.ndarray, top_k: int) -> dict[str, Any]:
    order = np.argsort(-probs)[:top_k]
    return {
        "file": source,
        "label": labels[order[0]],
        "top_labels": [labels[i] for i in order],
        "top_probabilities": [float(probs[i]) for i in order],
        "probabilities": {label: float(p) for label, p in zip(labels, probs)},
        "error": "",
    }


def error_row(source: str, reason: str) -> dict[str, Any]:
    return {
        "file": source,
        "label": None,
        "top_labels": [],
        "top_probabilities": [],
        "probabilities": {},
        "error": reason,
        **dict.fromkeys(ANSWER_COLUMNS),
    }


def _text(value: Any) -> str | None:
    """A row's ``text`` (None, NaN or blank: not given)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None
