"""The share of speakers given their own label, per group, with a bootstrap interval over speakers.

On a corpus whose speakers all share one label (speechocean762: every speaker is Mandarin-L1, so
``east asian``), balanced accuracy is just that share; what a reader wants is the share for each
kind of speaker (adults and children apart: a child's voice is far from any adult the archive
holds), how sure it is, and where the other answers went. Speakers are resampled, not clips: a
speaker's clips are one unit (their mean probabilities decide the speaker's label).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

ADULT_AGE = 18.0
UNKNOWN_AGE = "age unknown"


@dataclass(frozen=True)
class GroupShare:
    group: str
    label: str  # the speakers' true label
    speakers: int
    share: float  # of these speakers, the fraction predicted ``label``
    low: float  # percentile bootstrap interval over speakers
    high: float
    # What the speakers were called, most frequent first (the wrong answers show where they pile).
    predicted: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "group": self.group,
            "label": self.label,
            "speakers": self.speakers,
            "share": self.share,
            "share_ci": [self.low, self.high],
            "predicted": self.predicted,
        }


def age_group(age: object) -> str:
    """``adult`` (18 and over), ``child`` (under 18) or ``age unknown``."""
    try:
        value = float(age)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return UNKNOWN_AGE
    if np.isnan(value):
        return UNKNOWN_AGE
    return "adult" if value >= ADULT_AGE else "child"


def share_interval(
    hits: np.ndarray, *, n_resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``hits`` (one 0/1 per speaker)."""
    hits = np.asarray(hits, dtype=float)
    if len(hits) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = hits[rng.integers(0, len(hits), size=(n_resamples, len(hits)))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def group_shares(
    y_true: Sequence[int],
    y_pred: Sequence[int],
    groups: Sequence[str],
    labels: Sequence[str],
) -> list[GroupShare]:
    """One ``GroupShare`` per (group, true label) present, groups in sorted order."""
    true, pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    group_array = np.asarray([str(g) for g in groups], dtype=object)
    out = []
    for group in sorted(set(group_array)):
        for label in sorted(set(true[group_array == group])):
            mask = (group_array == group) & (true == label)
            hits = pred[mask] == label
            low, high = share_interval(hits)
            called = Counter(labels[i] for i in pred[mask])
            out.append(
                GroupShare(
                    group=group,
                    label=labels[label],
                    speakers=int(mask.sum()),
                    share=float(hits.mean()),
                    low=low,
                    high=high,
                    predicted=dict(sorted(called.items(), key=lambda kv: (-kv[1], kv[0]))),
                )
            )
    return out
