"""Which sounds betray an accent: heard slots over a corpus, per group against native readers.

Every recording's expected phonemes are read by ``features.slots.hear`` (from the cached
``phoneme_posteriors``; the per-recording slot tables are cached beside them). One row per slot
and speaker makes ``slot_table``; everything else is counted from it:

- ``substitutions``: per group (a native language with at least ``MIN_SPEAKERS`` speakers), each
  expected -> heard change's rate per speaker (the share of the speaker's measured slots of that
  phoneme heard so), its mean with a bootstrap interval over speakers, and the native-English
  readers' rate; a change is **flagged** when the interval of the difference lies above zero.
- ``confusion``: the group's expected x realised shares (the heatmap).
- ``slot_deviation``: per passage slot, how much more often the group's readers differ from the
  expected sound than the natives do (the shaded passage).
- ``native_reference``: what the native readers heard at each slot, to judge one recording by.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from speechprint.core.parallel import parallel_map
from speechprint.features.alignment import posterior_extractor
from speechprint.features.cache import FeatureCache, content_hash, resolve_cache_dir
from speechprint.features.extract import extract_features
from speechprint.features.slots import DELETED, Slot, hear
from speechprint.findings.transfer import NATIVE, diff_interval, mean_interval
from speechprint.text.g2p import ENGLISH_PHONEMES, text_words, words_digest
from speechprint.text.lexicon import Word

logger = logging.getLogger(__name__)

VERSION = 1
MIN_SPEAKERS = 20
VOWELS = frozenset(ENGLISH_PHONEMES[ENGLISH_PHONEMES.index("i") :])
COLUMNS = ["word", "index", "expected", "heard", "final", "p_expected", "gop", "mass"]


def slot_rows(slots: list[Slot], words: list[Word]) -> list[dict[str, Any]]:
    """One recording's slots as table rows (``final``: a word's last phoneme, a consonant)."""
    rows = []
    for slot in slots:
        last = slot.index == len(words[slot.word].phonemes) - 1
        rows.append(
            {
                "word": slot.word,
                "index": slot.index,
                "expected": slot.expected,
                "heard": slot.heard,
                "final": bool(last and slot.expected not in VOWELS),
                "p_expected": _number(slot.p_expected),
                "gop": _number(slot.gop),
                "mass": _number(slot.mass),
            }
        )
    return rows


def _number(value: float) -> float | None:
    return None if not np.isfinite(value) else round(float(value), 4)


def _hear_chunk(items: Sequence[tuple[str, str, str, str]]) -> list[list[dict[str, Any]]]:
    """``(audio, posterior .npy, cache file, text)`` items; runs in a worker."""
    out = []
    for _, posteriors, target, text in items:
        words = text_words(text)
        _, slots = hear(np.load(posteriors), words)
        rows = slot_rows(slots, words)
        _write_json(Path(target), rows)
        out.append(rows)
    return out


def slot_table(
    paths: list[str],
    text: str,
    *,
    jobs: int | None = None,
    cache_dir: str | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """One row per (recording, expected phoneme) of ``text`` (``path`` + ``COLUMNS``), for every
    decodable recording; posteriors and slots cached."""
    extractor = posterior_extractor()
    root = resolve_cache_dir(cache_dir)
    features = extract_features(
        paths, extractor, jobs=jobs, cache_dir=root, progress=progress, lazy=True
    )
    cache = FeatureCache(root, extractor)
    digest = words_digest(text_words(text))
    folder = root / f"slots.v{VERSION}-{digest}-{extractor.config_hash()}"
    found: dict[str, list[dict[str, Any]]] = {}
    todo = []
    for path in features.features:
        key = content_hash(path)
        target = folder / f"{key}.json"
        if target.exists():
            found[path] = json.loads(target.read_text())
        else:
            todo.append((path, str(cache.path_for(key)), str(target), text))
    rows = parallel_map(_hear_chunk, todo, jobs=jobs, label="hearing slots", progress=progress)
    found.update({item[0]: r for item, r in zip(todo, rows, strict=True)})
    frames = [pd.DataFrame(r, columns=COLUMNS).assign(path=p) for p, r in found.items()]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    return table.astype({"final": bool})


def _write_json(target: Path, rows: Any) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".tmp-{os.getpid()}-{target.name}")
    tmp.write_text(json.dumps(rows, ensure_ascii=False))
    os.replace(tmp, target)


def groups(speakers: pd.DataFrame, *, min_speakers: int = MIN_SPEAKERS) -> list[str]:
    """Native languages with at least ``min_speakers`` speakers, natives left out, largest first."""
    counts = speakers.loc[speakers["native_language"] != NATIVE, "native_language"].value_counts()
    return [str(k) for k, n in counts.items() if n >= min_speakers]


def change_rates(slots: pd.DataFrame) -> pd.DataFrame:
    """Per speaker and expected phoneme, the share of measured slots heard as each realisation
    (columns: speaker, expected, heard, rate)."""
    measured = slots[slots["heard"] != ""]
    counts = measured.groupby(["speaker", "expected", "heard"]).size()
    totals = measured.groupby(["speaker", "expected"]).size()
    rates = counts / totals.reindex(counts.index.droplevel("heard")).to_numpy()
    return rates.rename("rate").reset_index()


def substitutions(
    slots: pd.DataFrame, speakers: pd.DataFrame, language: str, *, n_boot: int = 500
) -> pd.DataFrame:
    """The group's changes (expected != heard) whose rate exceeds the native readers', each
    with its interval over speakers; sorted by the difference, flagged ones first."""
    language_of = speakers.set_index("speaker")["native_language"]
    rates = change_rates(slots)
    rates = rates[rates["expected"] != rates["heard"]]
    out = []
    for (expected, heard), block in rates.groupby(["expected", "heard"]):
        sides = {}
        for name, who in (("group", language), ("native", NATIVE)):
            said = slots[(slots["expected"] == expected) & (slots["heard"] != "")]
            members = said["speaker"][said["speaker"].map(language_of) == who].unique()
            values = block.set_index("speaker")["rate"].reindex(members).fillna(0.0)
            sides[name] = values.to_numpy()
        group, native = sides["group"], sides["native"]
        if len(group) < 2 or len(native) < 2 or group.mean() <= native.mean():
            continue
        low, high = mean_interval(group, n_boot=n_boot)
        d_low, d_high = diff_interval(group, native, n_boot=n_boot)
        out.append(
            {"expected": expected, "heard": heard, "rate": group.mean(), "low": low,
             "high": high, "native_rate": native.mean(), "diff_low": d_low,
             "diff_high": d_high, "speakers": len(group), "flagged": d_low > 0}
        )  # fmt: skip
    table = pd.DataFrame(out)
    if table.empty:
        return table
    table["diff"] = table["rate"] - table["native_rate"]
    return table.sort_values(["flagged", "diff"], ascending=False).reset_index(drop=True)


def confusion(slots: pd.DataFrame) -> pd.DataFrame:
    """Expected x heard shares (rows sum to 1) over measured slots."""
    measured = slots[slots["heard"] != ""]
    table = pd.crosstab(measured["expected"], measured["heard"], normalize="index")
    rows = [p for p in ENGLISH_PHONEMES if p in table.index]
    cols = [p for p in (*ENGLISH_PHONEMES, "ʔ", DELETED) if p in table.columns]
    return table.loc[rows, cols]


def slot_deviation(slots: pd.DataFrame, speakers: pd.DataFrame, language: str) -> pd.Series:
    """Per (word, index) slot: the group's share of readers not heard saying the expected
    sound, less the natives' share."""
    language_of = speakers.set_index("speaker")["native_language"]
    measured = slots[slots["heard"] != ""].assign(off=lambda f: f["heard"] != f["expected"])
    who = measured["speaker"].map(language_of)
    group = measured[who == language].groupby(["word", "index"])["off"].mean()
    native = measured[who == NATIVE].groupby(["word", "index"])["off"].mean()
    return (group - native.reindex(group.index).fillna(0.0)).rename("deviation")


def native_reference(
    slots: pd.DataFrame, speakers: pd.DataFrame
) -> dict[tuple[int, int], dict[str, float]]:
    """What the native readers were heard saying at each slot: ``{(word, index): {heard: share}}``."""
    language_of = speakers.set_index("speaker")["native_language"]
    measured = slots[(slots["heard"] != "") & (slots["speaker"].map(language_of) == NATIVE)]
    shares = measured.groupby(["word", "index"])["heard"].value_counts(normalize=True)
    out: dict[tuple[int, int], dict[str, float]] = {}
    for (word, index, heard), share in shares.items():
        out.setdefault((int(word), int(index)), {})[str(heard)] = float(share)
    return out


REFERENCE_SHARE = 0.2  # a change heard in at least this share of native readers is not flagged


def flag_slots(
    slots: list[Slot],
    reference: dict[tuple[int, int], dict[str, float]],
    *,
    max_share: float = REFERENCE_SHARE,
) -> list[bool]:
    """Per slot of one recording: heard otherwise than expected, and so rarely heard there by
    the reference readers (``native_reference``) that it is this speaker's own."""
    return [
        s.measured and s.heard != s.expected
        and reference.get((s.word, s.index), {}).get(s.heard, 0.0) < max_share
        for s in slots
    ]  # fmt: skip
