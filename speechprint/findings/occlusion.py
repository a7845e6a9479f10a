"""Which words carry the accent: the drop in P(true class) when one word's frames are removed.

For each recording and each aligned word, the word's feature frames are cut out (the recording as
if the word had not been there) and the model that scored the speaker (its fold's model) predicts
again; the drop in the probability of the speaker's true class is that word's evidence. Drops are
averaged per class over speakers with a bootstrap interval. Frames of contextual encoders
(Whisper) also carry some of their neighbours, so the drop is a lower bound on a word's role.
Skipped, unsure and unread words have no value (NaN), never a guess.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from speechprint.core.parallel import parallel_map
from speechprint.features.alignment import ALIGNED, WordSpan
from speechprint.features.pretrained.words import without_word
from speechprint.inference.ensemble import (
    load_classifier_file,  # a fold model or a seed average
)

VERSION = 2
_classifiers: list[Any] = []  # per worker: the fold models


def word_drops(
    classifier: Any, features: np.ndarray, duration: float, y: int, spans: list[WordSpan]
) -> np.ndarray:
    """``(n_words,)`` drop in P(class ``y``) per word (NaN where the word is not aligned).

    Frames: the word's frames cut out. A ``whisper_words`` vector (1-D): the word's group set to
    the utterance mean (``WhisperWords.without_word``).
    """
    variants, which = [features], []
    for span in spans:
        if span.status != ALIGNED:
            continue
        occluded = _without(features, duration, span)
        if occluded is not None:
            variants.append(occluded)
            which.append(span.index)
    drops = np.full(len(spans), np.nan)
    if which:
        proba = classifier.predict_proba_features(variants)[:, y]
        drops[which] = proba[0] - proba[1:]
    return drops


def can_occlude(extractor: Any) -> bool:
    """Frames can lose a word's frames; a ``whisper_words`` vector can lose a word's group."""
    return extractor.kind == "sequence" or extractor.name == "whisper_words"


def _without(features: np.ndarray, duration: float, span: WordSpan) -> np.ndarray | None:
    if features.ndim == 1:  # a whisper_words vector (can_occlude admits no other pooled one)
        return without_word(features, span.index)
    rate = len(features) / duration if duration > 0 else 0.0
    lo, hi = int(np.floor(span.start * rate)), int(np.ceil(span.end * rate))
    kept = np.concatenate([features[:lo], features[hi:]])
    return kept if hi > lo and len(kept) >= 2 else None


def _load(paths: list[str]) -> None:
    _classifiers[:] = [load_classifier_file(p) for p in paths]


def _chunk(items: Sequence[tuple[int, np.ndarray, float, int, list[WordSpan]]]) -> list[np.ndarray]:
    return [word_drops(_classifiers[fold], f, d, y, s) for fold, f, d, y, s in items]


def occlusion_matrix(
    subject: Any, alignments: dict[str, list[WordSpan]], *, jobs: int | None, progress: bool
) -> np.ndarray:
    """``(recordings, words)`` drops for the subject's recordings (cached beside its fold models)."""
    paths = list(subject.frame["path"])
    # Keyed by the alignments too: re-aligned words must be occluded again.
    recorded = json.dumps([[asdict(s) for s in alignments.get(p, [])] for p in paths], default=str)
    digest = hashlib.sha256(recorded.encode()).hexdigest()[:12]
    cache = subject.folder / f"occlusion-v{VERSION}-{digest}.npz"
    if cache.exists():
        stored = np.load(cache)
        if list(stored["paths"]) == paths:
            return stored["drops"]
    n_words = len(next(iter(alignments.values()), [])) or 69
    items, rows = [], []
    for i, row in enumerate(subject.frame.itertuples(index=False)):
        spans = alignments.get(row.path)
        if spans is None or not np.isfinite(row.duration):
            continue
        items.append(
            (
                int(row.fold),
                subject.features.features[row.path],
                float(row.duration),
                int(row.y),
                spans,
            )
        )
        rows.append(i)
    drops = np.full((len(paths), n_words), np.nan)
    results = parallel_map(
        _chunk,
        items,
        jobs=jobs,
        label="occluding words",
        progress=progress,
        initializer=_load,
        initargs=([str(p) for p in subject.classifiers],),
    )
    for i, values in zip(rows, results):
        drops[i] = values
    np.savez(cache, paths=np.array(paths), drops=drops)
    return drops


def summarise(
    drops: np.ndarray,
    labels: list[str],
    classes: tuple[str, ...],
    words: list[str],
    *,
    n_boot: int = 200,
    seed: int = 0,
) -> pd.DataFrame:
    """Long table: class, word, mean drop, 95% bootstrap interval over speakers, n."""
    rng = np.random.default_rng(seed)
    labels_arr = np.asarray(labels)
    rows = []
    for cls in classes:
        block = drops[labels_arr == cls]
        if len(block) == 0:
            continue
        samples = rng.integers(0, len(block), size=(n_boot, len(block)))
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: NaN is the answer
            means = np.nanmean(block, axis=0)
            boot = np.nanmean(block[samples], axis=1)  # (n_boot, words)
            low, high = np.nanpercentile(boot, [2.5, 97.5], axis=0)
        counts = np.sum(np.isfinite(block), axis=0)
        for w, word in enumerate(words):
            rows.append(
                {
                    "class": cls,
                    "word": word,
                    "mean_drop": means[w],
                    "ci_low": low[w],
                    "ci_high": high[w],
                    "n": int(counts[w]),
                }
            )
    return pd.DataFrame(rows)


def plot_heatmap(
    table: pd.DataFrame,
    words: list[str],
    out: Path,
    title: str = "Drop in P(true class) when the word is removed",
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = table.pivot(index="word", columns="class", values="mean_drop").reindex(words)
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * grid.shape[1], 13))
    limit = float(np.nanmax(np.abs(grid.to_numpy()))) if np.isfinite(grid.to_numpy()).any() else 1
    image = ax.imshow(grid.to_numpy(), aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax.set_yticks(range(len(words)), words, fontsize=7)
    ax.set_xticks(range(grid.shape[1]), grid.columns, rotation=60, ha="right", fontsize=8)
    ax.set_title(title)
    fig.colorbar(image, ax=ax, shrink=0.5, label="mean drop (red: evidence for the true class)")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def top_words(table: pd.DataFrame, k: int = 5) -> dict[str, list[tuple[str, float]]]:
    """Per class, the ``k`` words whose removal costs the true class most (each word measured on
    at least 3 speakers, or on all of a class that has fewer)."""
    out = {}
    enough = table["n"] >= np.minimum(3, table.groupby("class")["n"].transform("max"))
    for cls, block in table[enough & (table["n"] > 0)].groupby("class"):
        best = block.sort_values("mean_drop", ascending=False).head(k)
        out[str(cls)] = [(str(w), float(d)) for w, d in zip(best["word"], best["mean_drop"])]
    return out


def passage_html(words: list[str], drops: np.ndarray, title: str) -> str:
    """The passage with each word shaded by its evidence (red: removing it costs the true class)."""
    limit = float(np.nanmax(np.abs(drops))) if np.isfinite(drops).any() else 1.0
    parts = []
    for word, value in zip(words, drops):
        text = word.split(" ", 1)[-1]
        if not np.isfinite(value):
            parts.append(f'<span class="na" title="not aligned">{text}</span>')
            continue
        alpha = min(1.0, abs(value) / (limit or 1.0))
        colour = "220,50,40" if value > 0 else "40,90,220"
        parts.append(
            f'<span style="background: rgba({colour},{alpha:.2f})" '
            f'title="{value:+.3f}">{text}</span>'
        )
    return f'<p class="speaker"><b>{title}</b>: {" ".join(parts)}</p>'
