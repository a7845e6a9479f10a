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


def groups(speakers: pd.DataFrame, *, min_speakers: int | None = None) -> list[str]:
    """Native languages with at least ``min_speakers`` (default ``MIN_SPEAKERS``) speakers,
    natives left out, largest first."""
    min_speakers = MIN_SPEAKERS if min_speakers is None else min_speakers
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
    slots: pd.DataFrame,
    speakers: pd.DataFrame,
    language: str,
    *,
    n_boot: int = 500,
    min_excess: float = 0.02,
) -> pd.DataFrame:
    """The group's changes (expected != heard) whose rate exceeds the native readers' by at
    least ``min_excess``, each with its interval over speakers (a speaker who never said the
    phoneme is left out of that phoneme's rates); flagged ones first, by the difference."""
    language_of = speakers.set_index("speaker")["native_language"]
    wide = change_rates(slots).pivot_table(
        index=["speaker", "expected"], columns="heard", values="rate", fill_value=0.0
    )
    out = []
    for expected, block in wide.groupby(level="expected"):
        who = block.index.get_level_values("speaker").map(language_of)
        group, native = block[who == language], block[who == NATIVE]
        if len(group) < 2 or len(native) < 2:
            continue
        excess = group.mean() - native.mean()
        for heard in excess.index[(excess >= min_excess) & (excess.index != expected)]:
            g, n = group[heard].to_numpy(), native[heard].to_numpy()
            low, high = mean_interval(g, n_boot=n_boot)
            d_low, d_high = diff_interval(g, n, n_boot=n_boot)
            out.append(
                {
                    "group": language,
                    "expected": expected,
                    "heard": heard,
                    "rate": g.mean(),
                    "low": low,
                    "high": high,
                    "native_rate": n.mean(),
                    "diff": g.mean() - n.mean(),
                    "diff_low": d_low,
                    "diff_high": d_high,
                    "speakers": len(g),
                    "flagged": d_low > 0,
                }
            )
    table = pd.DataFrame(out)
    if table.empty:
        return table
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


def native_reference(slots: pd.DataFrame, speakers: pd.DataFrame) -> dict[str, dict[str, dict]]:
    """What the native readers were heard saying: ``{"slots": {"word:index": {heard: share}},
    "phonemes": {expected: {heard: share}}}`` (JSON-ready; ``reference_of`` reads it back)."""
    language_of = speakers.set_index("speaker")["native_language"]
    measured = slots[(slots["heard"] != "") & (slots["speaker"].map(language_of) == NATIVE)]
    by_slot = measured.groupby(["word", "index"])["heard"].value_counts(normalize=True)
    by_phoneme = measured.groupby("expected")["heard"].value_counts(normalize=True)
    out: dict[str, dict[str, dict]] = {"slots": {}, "phonemes": {}}
    for (word, index, heard), share in by_slot.items():
        out["slots"].setdefault(f"{word}:{index}", {})[str(heard)] = round(float(share), 4)
    for (expected, heard), share in by_phoneme.items():
        out["phonemes"].setdefault(str(expected), {})[str(heard)] = round(float(share), 4)
    return out


def reference_of(
    native: dict[str, dict[str, dict]], slots: list[Slot], *, same_text: bool
) -> dict[tuple[int, int], dict[str, float]]:
    """Per slot of one recording, what native readers said there: the same slot of the same
    text when ``same_text`` (the passage), else the natives' shares for the expected phoneme."""
    out = {}
    for s in slots:
        key = f"{s.word}:{s.index}"
        found = native["slots"].get(key) if same_text else None
        out[(s.word, s.index)] = found or native["phonemes"].get(s.expected, {})
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
        s.measured
        and s.heard != s.expected
        and reference.get((s.word, s.index), {}).get(s.heard, 0.0) < max_share
        for s in slots
    ]
