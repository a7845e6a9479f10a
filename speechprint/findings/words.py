"""Section 1, word-level evidence: alignment, occlusion, heatmap, top words, passages shaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from speechprint.core.errors import MissingExtraError
from speechprint.features.alignment import ALIGNED, align_files
from speechprint.findings import occlusion
from speechprint.findings.page import Section
from speechprint.text.lexicon import passage_words

TITLE = "Which words of the paragraph carry the accent?"


def section(subject: Any, out: Path, *, jobs: int | None, progress: bool) -> Section:
    extractor = subject.features.extractor
    if not occlusion.can_occlude(extractor):
        return Section(
            "words",
            TITLE,
            "Not computed: the model's features are one vector per "
            "recording, so single words cannot be removed from them.",
        )

    paths = list(subject.frame["path"])
    try:
        alignments = align_files(
            paths, jobs=jobs, cache_dir=subject.config.cache_dir, progress=progress
        )
    except MissingExtraError as error:  # the other sections need no extra
        return Section("words", TITLE, f"Not computed: {error}.")
    labels = [w.label for w in passage_words()]
    status = pd.DataFrame(
        [[s.status for s in alignments.get(p, [])] or ["missing"] * len(labels) for p in paths],
        columns=labels,
    )
    drops = occlusion.occlusion_matrix(subject, alignments, jobs=jobs, progress=progress)
    table = occlusion.summarise(drops, list(subject.frame["label"]), subject.labels, labels)
    image = occlusion.plot_heatmap(table, labels, out / "words_heatmap.png")
    table.to_csv(out / "words.csv", index=False)
    pd.DataFrame(drops, columns=labels).assign(path=paths).to_csv(
        out / "words_speakers.csv", index=False
    )
    status.assign(path=paths).to_csv(out / "alignment_status.csv", index=False)
    top = occlusion.top_words(table)
    per_recording = (status.to_numpy() == ALIGNED).sum(axis=1)
    lines = "; ".join(
        f"{cls}: {', '.join(_named(w) for w, _ in words[:3])}" for cls, words in top.items()
    )
    how = (
        "Removing a word's frames"
        if extractor.kind == "sequence"
        else "Replacing a word's mean frame by the utterance's"
    )
    summary = (
        f"Each of {len(paths)} recordings was aligned to the passage: a median of "
        f"{np.median(per_recording):.0f} of {len(labels)} words per recording aligned (the "
        "rest skipped, unsure or not reached, and left out rather than guessed). "
        f"{how} lowers the model's probability of the speaker's true "
        f"class most for these words (top three per class, #: the word's place in the "
        f"passage): {lines or 'none measured'}. {_evidence_line(table)}"
    )
    if subject.words_from:
        summary = (
            f"Measured on the ensemble's member whose inputs have words, "
            f"{subject.words_from}: the other members see no single word. "
        ) + summary
    html = _speakers_html(subject, drops, labels)
    return Section(
        "words",
        TITLE,
        summary,
        [image],
        [out / "words.csv", out / "words_speakers.csv", out / "alignment_status.csv"],
        html=html,
    )


def _named(label: str) -> str:
    """``"26 and"`` -> ``"and #26"``: a word the passage repeats is told apart by its place."""
    index, word = label.split(" ", 1)
    return f"{word} #{int(index)}"


def _evidence_line(table: pd.DataFrame) -> str:
    """How much of the heatmap is evidence rather than noise, in numbers."""
    measured = table[table["n"] > 0]
    above = measured[measured["ci_low"] > 0]
    if measured.empty:
        return ""
    peak = measured.loc[measured["mean_drop"].idxmax()]
    return (
        f"{len(above)} of {len(measured)} word x class cells have a bootstrap interval above "
        f"zero; the largest mean drop is {peak['mean_drop']:.3f} ({_named(peak['word'])}, "
        f"{peak['class']})."
    )


def _speakers_html(subject: Any, drops: np.ndarray, labels: list[str]) -> str:
    """One passage per class: its most confidently right speaker, words shaded by evidence."""
    parts = [
        "<h3>Per speaker: the passage shaded by evidence (red: removing the word costs the "
        "true class; blue: it helps; struck out: not aligned)</h3>"
    ]
    frame = subject.frame.assign(
        p_true=subject.proba[np.arange(len(subject.proba)), subject.frame["y"]]
    )
    for label, block in frame.groupby("label"):
        row = block["p_true"].idxmax()
        title = f"{label}, speaker {frame.loc[row, 'speakerid']} (P(true) {frame.loc[row, 'p_true']:.2f})"
        parts.append(occlusion.passage_html(labels, drops[row], title))
    return "\n".join(parts)
