"""Section "Which sounds betray each accent": substitutions per native language against the
native-English readers, the documented transfer patterns checked, an expected x realised heatmap
per group, the passage shaded by deviation, and goodness of pronunciation against age of onset.

``measure`` works on any table of recordings with ``path``, ``native_language`` (and
``age_onset``), so the same code writes the findings page's section and the archive-wide
measurement (``benchmarks/sounds_saa8k.py``).
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from speechprint.core.errors import MissingExtraError
from speechprint.data.archive import reading_passage
from speechprint.features.slots import REALISED
from speechprint.findings import plots, sounds, transfer
from speechprint.findings.page import Section
from speechprint.findings.stats import bootstrap
from speechprint.text.g2p import ENGLISH_PHONEMES, text_words

logger = logging.getLogger(__name__)

TITLE = "Which sounds betray each accent"
FRICATIVES = frozenset({"f", "v", "θ", "ð", "s", "z", "ʃ", "ʒ", "h"})
TOP = 5


def section(subject: object, out: Path, *, jobs: int | None, progress: bool) -> Section:
    """The findings page's section, over the model's speakers."""
    frame = subject.frame  # type: ignore[attr-defined]
    cache_dir = subject.config.cache_dir  # type: ignore[attr-defined]
    if "native_language" not in frame.columns:
        return Section("sounds", TITLE, "Not computed: the corpus has no native_language column.")
    try:
        return measure(frame, out, jobs=jobs, cache_dir=cache_dir, progress=progress)
    except MissingExtraError as error:  # the other sections need no extra
        return Section("sounds", TITLE, f"Not computed: {error}.")


def measure(
    frame: pd.DataFrame,
    out: Path,
    *,
    text: str | None = None,
    jobs: int | None = None,
    cache_dir: str | None = None,
    progress: bool = True,
) -> Section:
    """Every output of the section for the recordings of ``frame`` (one speaker each)."""
    text = text or reading_passage()
    paths = [str(p) for p in frame["path"]]
    table = sounds.slot_table(paths, text, jobs=jobs, cache_dir=cache_dir, progress=progress)
    table["speaker"] = table["path"]
    speakers = frame.assign(speaker=[str(p) for p in frame["path"]])
    speakers = speakers[speakers["speaker"].isin(set(table["speaker"]))]
    groups = sounds.groups(speakers)
    patterns = transfer.check_all(table, speakers, transfer.load_patterns())
    subs = [sounds.substitutions(table, speakers, g) for g in groups]
    subs_table = pd.concat([s for s in subs if not s.empty] or [pd.DataFrame()])
    onset = onset_table(table, speakers)
    patterns.to_csv(out / "sounds_patterns.csv", index=False)
    subs_table.to_csv(out / "sounds_substitutions.csv", index=False)
    onset.to_csv(out / "sounds_onset.csv", index=False)
    reference = sounds.native_reference(table, speakers)
    (out / "sounds_native.json").write_text(json.dumps(reference, ensure_ascii=False, indent=0))
    image = plot_confusions(table, speakers, groups, out / "sounds_heatmap.png")
    words = text_words(text)
    markup = _patterns_html(patterns) + _substitutions_html(subs_table, groups)
    markup += _passages_html(table, speakers, groups, words)
    summary = _summary(speakers, groups, patterns, subs_table)
    data = [
        out / f for f in ("sounds_patterns.csv", "sounds_substitutions.csv", "sounds_onset.csv")
    ]
    return Section("sounds", TITLE, summary, [image], data, html=markup)


def describe(row: pd.Series) -> str:
    """``/v/ as [b]: 31% [24-38] of slots vs 3% for native speakers``."""
    return (
        f"/{row['expected']}/ as [{row['heard']}]: {row['rate']:.0%} "
        f"[{row['low']:.0%}-{row['high']:.0%}] of slots vs {row['native_rate']:.0%} for "
        "native speakers"
    )


def _summary(
    speakers: pd.DataFrame, groups: list[str], patterns: pd.DataFrame, subs: pd.DataFrame
) -> str:
    natives = int((speakers["native_language"] == transfer.NATIVE).sum())
    counts = patterns["verdict"].value_counts()
    lines = []
    for group in groups:
        block = subs[subs["group"] == group] if not subs.empty else subs
        flagged = block[block["flagged"]] if not block.empty else block
        if not flagged.empty:
            lines.append(f"{group}: {describe(flagged.iloc[0])}")
    return (
        f"Every expected phoneme of the passage was read off the phoneme recogniser for "
        f"{len(speakers)} speakers ({natives} native English readers as the reference; groups "
        f"of at least {sounds.MIN_SPEAKERS} speakers: {', '.join(groups) or 'none'}). "
        f"Of {len(patterns)} documented transfer patterns, {counts.get(transfer.FOUND, 0)} are "
        f"found (bootstrap interval of the difference from native readers above zero; "
        f"{_specific(patterns)} of them above the other learners' rate too), "
        f"{counts.get(transfer.NOT_FOUND, 0)} not found and {counts.get(transfer.TOO_THIN, 0)} "
        f"too thin to say. The strongest change per group: {'; '.join(lines) or 'none'}."
    )


def _specific(patterns: pd.DataFrame) -> int:
    if "specific" not in patterns.columns:
        return 0
    found = patterns[patterns["verdict"] == transfer.FOUND]
    return int(found["specific"].fillna(False).astype(bool).sum())


def onset_table(table: pd.DataFrame, speakers: pd.DataFrame, *, n_boot: int = 500) -> pd.DataFrame:
    """Spearman's rho of a speaker's mean GOP per phoneme class with ``age_onset`` (learners
    only), with a bootstrap interval over speakers."""
    if "age_onset" not in speakers.columns:
        return pd.DataFrame()
    onset = pd.to_numeric(speakers.set_index("speaker")["age_onset"], errors="coerce")
    learner = speakers.set_index("speaker")["native_language"] != transfer.NATIVE
    measured = table[table["heard"] != ""]
    classes = {
        "vowels": measured["expected"].isin(sounds.VOWELS),
        "fricatives": measured["expected"].isin(FRICATIVES),
        "final consonants": measured["final"].astype(bool),
    }
    rows = []
    for name, mask in classes.items():
        gop = measured[mask].groupby("speaker")["gop"].mean()
        both = pd.DataFrame({"gop": gop, "onset": onset.reindex(gop.index)})
        both = both[learner.reindex(both.index).fillna(False).astype(bool)].dropna()
        if len(both) < 10:
            rows.append({"class": name, "speakers": len(both)})
            continue
        x, y = both["onset"].to_numpy(), both["gop"].to_numpy()
        rho = float(spearmanr(x, y).statistic)
        low, high = bootstrap(_spearman_of(x, y), len(x), n_boot=n_boot)
        rows.append({"class": name, "speakers": len(both), "rho": rho, "low": low, "high": high})
    return pd.DataFrame(rows)


def plot_confusions(
    table: pd.DataFrame, speakers: pd.DataFrame, groups: list[str], out: Path
) -> Path:
    """Expected (rows) x realised (columns) shares per group, natives first."""
    plt = plots.pyplot()
    shown = [transfer.NATIVE, *groups][:9]
    columns = [*REALISED, sounds.DELETED]
    cols = min(3, len(shown))
    rows = int(np.ceil(len(shown) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 5.2 * rows), squeeze=False)
    language_of = speakers.set_index("speaker")["native_language"]
    for ax, group in zip(axes.flat, shown):
        block = table[table["speaker"].map(language_of) == group]
        matrix = sounds.confusion(block).reindex(index=list(ENGLISH_PHONEMES), columns=columns)
        ax.imshow(matrix.fillna(0.0).to_numpy(), vmin=0, vmax=1, cmap="magma_r", aspect="auto")
        ax.set_title(f"{group} ({block['speaker'].nunique()} speakers)")
        ax.set_yticks(range(len(matrix.index)), matrix.index, fontsize=6)
        ax.set_xticks(range(len(columns)), columns, fontsize=5, rotation=90)
        ax.set_xlabel("heard")
        ax.set_ylabel("expected")
    for ax in list(axes.flat)[len(shown) :]:
        ax.axis("off")
    return plots.save(fig, out)


def _patterns_html(patterns: pd.DataFrame) -> str:
    rows = []
    for _, p in patterns.iterrows():
        if p["verdict"] == transfer.TOO_THIN:
            numbers = f"{p['speakers']} speakers: too few to say"
        else:
            numbers = (
                f"{p['rate']:.1%} [{p['rate_low']:.1%}-{p['rate_high']:.1%}] vs "
                f"{p['native_rate']:.1%} native; difference [{p['diff_low']:+.1%}, "
                f"{p['diff_high']:+.1%}] ({p['speakers']} speakers)"
            )
            if pd.notna(p.get("others_rate")):
                numbers += f"; other learners {p['others_rate']:.1%}" + (
                    ", above them too" if p["specific"] else ", not above them"
                )
        cells = [p["pattern"], p["languages"], p["changes"], p["position"], p["verdict"], numbers]
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    head = "".join(
        f"<th>{h}</th>" for h in ("pattern", "L1", "change", "where", "verdict", "measured")
    )
    return (
        "<h3>Documented transfer patterns, checked</h3><table class='patterns'><tr>"
        f"{head}</tr>{''.join(rows)}</table>"
    )


def _substitutions_html(subs: pd.DataFrame, groups: list[str]) -> str:
    parts = ["<h3>Top substitutions per group (flagged: interval above the native rate)</h3>"]
    for group in groups:
        block = subs[(subs["group"] == group) & subs["flagged"]] if not subs.empty else subs
        items = "".join(
            f"<li>{html.escape(describe(r))}</li>" for _, r in block.head(TOP).iterrows()
        )
        parts.append(
            f"<p><b>{html.escape(group)}</b></p><ul>{items or '<li>none flagged</li>'}</ul>"
        )
    return "".join(parts)


def _passages_html(
    table: pd.DataFrame, speakers: pd.DataFrame, groups: list[str], words: list
) -> str:
    parts = [
        "<h3>The passage shaded by deviation (red: the group's readers differ from the "
        "expected sound more often than native readers)</h3>"
    ]
    for group in groups:
        deviation = sounds.slot_deviation(table, speakers, group)
        parts.append(
            f"<p class='speaker'><b>{html.escape(group)}</b>: {passage_html(words, deviation)}</p>"
        )
    return "".join(parts)


def passage_html(words: list, deviation: pd.Series) -> str:
    """Each word's phonemes shaded by ``deviation`` (indexed by (word, index)), the word above."""
    out = []
    for word in words:
        sounds_ = []
        for k, phoneme in enumerate(word.phonemes):
            value = float(deviation.get((word.index, k), 0.0))
            alpha = min(1.0, max(0.0, value) * 2.5)
            title = f"/{phoneme}/ {value:+.0%}"
            sounds_.append(
                f"<span style='background: rgba(220,40,40,{alpha:.2f})' "
                f"title='{html.escape(title)}'>{html.escape(phoneme)}</span>"
            )
        out.append(f"<span class='w' title='{html.escape(word.text)}'>{''.join(sounds_)}</span>")
    return " ".join(out)


def _spearman_of(x: np.ndarray, y: np.ndarray) -> Callable[[np.ndarray], float]:
    """Spearman's rho of the resampled rows ``i`` (for ``bootstrap``)."""
    return lambda i: float(spearmanr(x[i], y[i]).statistic)
