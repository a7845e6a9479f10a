"""Section: which phonemes a model over the ``phones`` profile listens to, per region.

For each recording and each phoneme of English it holds, that phoneme's part of the profile (its
mean Whisper frame, goodness of pronunciation, duration and count) is set to the training
speakers' mean, as if this speaker had said it the way the archive's average speaker does; the
fold's model (which never heard this speaker) predicts again, and the drop in the probability of
the speaker's true class is the phoneme's evidence. A phoneme the recording does not hold has no
value (NaN), never a guess. Drops are averaged per class with a bootstrap interval over speakers
(``occlusion.summarise``), as the words are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from speechprint.findings import occlusion
from speechprint.findings.page import Section
from speechprint.inference.ensemble import EnsembleClassifier, load_classifier_file
from speechprint.text.g2p import ENGLISH_PHONEMES

TITLE = "Which sounds does the model listen to?"
STATS = 3  # gop, duration, count per phoneme, after the frames (features.pretrained.phones)


def phoneme_indices(extractor: Any) -> list[np.ndarray] | None:
    """Per phoneme of ``ENGLISH_PHONEMES``, the positions of its part of the feature vector
    (frame row, GOP, duration, count); ``None`` when the features hold no ``phones`` profile."""
    parts = extractor.extractors() if extractor.name == "fusion" else [extractor]
    offset = 0
    for part in parts:
        if part.name == "phones":
            n = len(ENGLISH_PHONEMES)
            dim = (int(part.output_dim()) - STATS * n) // n
            stats = offset + n * dim + np.arange(STATS) * n
            return [
                np.concatenate([offset + i * dim + np.arange(dim), stats + i]) for i in range(n)
            ]
        offset += int(part.output_dim())
    return None


def training_mean(classifier: Any) -> np.ndarray:
    """The mean feature vector of the speakers a (fold) model was trained on."""
    while isinstance(classifier, EnsembleClassifier):
        classifier = classifier.members[0]  # seeds of one fold share its training speakers
    return np.asarray(classifier.mean, dtype=np.float32).reshape(-1)


def phoneme_drops(
    classifier: Any, vector: np.ndarray, y: int, parts: list[np.ndarray]
) -> np.ndarray:
    """``(41,)`` drop in P(class ``y``) when each phoneme the recording holds takes the training
    mean (NaN for a phoneme it does not hold: count 0)."""
    mean = training_mean(classifier)
    variants, which = [vector], []
    for i, positions in enumerate(parts):
        if vector[positions[-1]] <= 0:  # the count: the phoneme never occurred here
            continue
        occluded = vector.copy()
        occluded[positions] = mean[positions]
        variants.append(occluded)
        which.append(i)
    drops = np.full(len(parts), np.nan)
    if which:
        proba = classifier.predict_proba_features(variants)[:, y]
        drops[which] = proba[0] - proba[1:]
    return drops


def drop_matrix(subject: Any, parts: list[np.ndarray]) -> np.ndarray:
    """``(recordings, 41)`` drops, each recording measured by its own fold's model."""
    models = [load_classifier_file(p) for p in subject.classifiers]
    drops = np.full((len(subject.frame), len(parts)), np.nan)
    for i, row in enumerate(subject.frame.itertuples(index=False)):
        vector = np.asarray(subject.features.features[row.path], dtype=np.float32)
        drops[i] = phoneme_drops(models[int(row.fold)], vector, int(row.y), parts)
    return drops


def section(subject: Any, out: Path) -> Section | None:
    """The section, or ``None`` (left off the page) when the features hold no phones profile."""
    parts = phoneme_indices(subject.features.extractor)
    if parts is None:
        return None
    names = [f"/{p}/" for p in ENGLISH_PHONEMES]
    drops = drop_matrix(subject, parts)
    table = occlusion.summarise(drops, list(subject.frame["label"]), subject.labels, names)
    image = occlusion.plot_heatmap(
        table,
        names,
        out / "phonemes_heatmap.png",
        title="Drop in P(true class) when a phoneme sounds average",
    )
    table.to_csv(out / "phonemes.csv", index=False)
    pd.DataFrame(drops, columns=names).assign(path=list(subject.frame["path"])).to_csv(
        out / "phonemes_speakers.csv", index=False
    )
    top = occlusion.top_words(table)
    lines = "; ".join(f"{cls}: {', '.join(w for w, _ in found[:3])}" for cls, found in top.items())
    above = table[table["ci_low"] > 0]
    summary = (
        f"Setting one phoneme's part of the profile (its mean frame, goodness of pronunciation, "
        f"duration and count) to the training speakers' mean lowers the model's probability of "
        f"the speaker's true class most for these phonemes (top three per class): "
        f"{lines or 'none measured'}. {len(above)} of {len(table)} phoneme x class cells have a "
        "bootstrap interval above zero"
        + (
            f"; the largest mean drop is {table['mean_drop'].max():.3f}."
            if np.isfinite(table["mean_drop"]).any()
            else "."
        )
    )
    if subject.words_from:  # an ensemble: measured on the member its frame and models are of
        summary = f"Measured on the ensemble's member {subject.words_from}. " + summary
    return Section(
        "phonemes",
        TITLE,
        summary,
        [image],
        [out / "phonemes.csv", out / "phonemes_speakers.csv"],
    )
