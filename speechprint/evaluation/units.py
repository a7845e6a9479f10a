"""Clip and speaker metrics: with many clips per speaker, a speaker is scored once, on the mean of
their clips' probabilities, and the study file's ``data.unit`` says which of the two is *the*
balanced accuracy (what early reporting, studies and promotion compare).

``with_units(metrics, speakers, unit=...)`` takes a split's per-clip metrics (as
``train.evaluate.evaluate_arrays`` returns them) and returns the chosen unit's metrics at the top
level, the other unit's under ``"clip"`` or ``"speaker"``, and ``"unit"`` naming which is which.
With one clip per speaker (the archive) both are the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from speechprint.evaluation.metrics import score_split

UNITS = ("clip", "speaker")


def by_speaker(
    proba: np.ndarray, y_true: Sequence[int] | np.ndarray, speakers: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Each speaker's mean probabilities and label (speakers sorted)."""
    speakers = [str(s) for s in speakers]
    order = sorted(set(speakers))
    index = {s: i for i, s in enumerate(order)}
    owners = np.array([index[s] for s in speakers], dtype=int)
    proba = np.asarray(proba, dtype=np.float64).reshape(len(speakers), -1)
    totals = np.zeros((len(order), proba.shape[1]))
    np.add.at(totals, owners, proba)
    counts = np.bincount(owners, minlength=len(order))[:, None]
    y = np.zeros(len(order), dtype=int)
    y[owners] = np.asarray(y_true, dtype=int)  # one label per speaker (make_dataset's rule)
    return totals / np.maximum(counts, 1), y, order


def speaker_metrics(
    clip: dict[str, Any],
    speakers: Sequence[str],
    train_counts: dict[str, int] | None = None,
    proba: np.ndarray | None = None,
) -> dict[str, Any]:
    """Speaker-level metrics from a split's clip-level ones (``clip["proba"]`` or ``proba``;
    without either, each clip votes for its predicted label)."""
    if proba is None and "proba" not in clip:
        proba = np.eye(len(clip["labels"]))[np.asarray(clip["y_pred"], dtype=int)]
    proba = np.asarray(clip["proba"] if proba is None else proba, dtype=np.float64)
    mean, y, order = by_speaker(proba, clip["y_true"], speakers)
    return {**score_split(y, mean, clip["labels"], train_counts=train_counts), "speakers": order}


def with_units(
    clip: dict[str, Any],
    speakers: Sequence[str],
    *,
    unit: str = "clip",
    train_counts: dict[str, int] | None = None,
    proba: np.ndarray | None = None,
) -> dict[str, Any]:
    """The chosen ``unit``'s metrics on top, the other unit's nested under its name."""
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r}; valid: {', '.join(UNITS)}")
    speaker = speaker_metrics(clip, speakers, train_counts, proba)
    if unit == "speaker":
        return {**speaker, "unit": "speaker", "clip": clip}
    return {**clip, "unit": "clip", "speaker": speaker}


def unit_metrics(metrics: dict[str, Any], unit: str) -> dict[str, Any]:
    """``unit``'s metrics from a ``with_units`` record, whichever unit is on top."""
    return metrics if metrics["unit"] == unit else dict(metrics[unit])
