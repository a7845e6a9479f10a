"""The documented L1 transfer patterns (``data/transfer-patterns.yaml``), read with a strict
schema, and each checked against a table of heard slots (``findings.sounds``).

A pattern is a set of changes ("v>b": /v/ heard as [b]; "d>∅": /d/ deleted), optionally only in
a word's last phoneme, attributed to speakers of some native languages. Its **rate** per speaker
is the share of that speaker's measured slots of the changed phonemes heard as the documented
realisation. The group's mean rate is compared with the native-English speakers' by a bootstrap
over speakers (each side resampled): the pattern is **found** when the 95% interval of the
difference lies above zero, **not found** when it does not, and **too thin** when fewer than
``MIN_SPEAKERS`` of its speakers were measured. Its rate among the other learners (neither
native nor of the pattern's languages) is given beside it, and the pattern is **specific** when
the group's rate is above theirs too (the same bootstrap).
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from speechprint.core.errors import DataError
from speechprint.features.slots import DELETED, REALISED

MIN_SPEAKERS = 20
FOUND, NOT_FOUND, TOO_THIN = "found", "not found", "too thin"
NATIVE = "english"


class Pattern(BaseModel):
    """One documented transfer pattern."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    languages: list[str] = Field(min_length=1)
    changes: list[str] = Field(min_length=1)
    position: Literal["any", "final"]
    claim: str = Field(min_length=1)
    source: str = Field(min_length=1)

    @field_validator("changes")
    @classmethod
    def _known_phonemes(cls, changes: list[str]) -> list[str]:
        for change in changes:
            expected, _, realised = change.partition(">")
            if expected not in REALISED or realised not in (*REALISED, DELETED):
                raise ValueError(f"change {change!r}: not 'expected>realised' in English phonemes")
        return changes

    def pairs(self) -> set[tuple[str, str]]:
        return {tuple(c.split(">", 1)) for c in self.changes}  # type: ignore[misc]

    @property
    def label(self) -> str:
        return ", ".join(f"/{e}/ as [{r}]" for e, r in sorted(self.pairs()))


def load_patterns(path: str | Path | None = None) -> list[Pattern]:
    """The shipped table (or ``path``); a bad entry raises ``DataError`` naming the file and
    the entry."""
    if path is None:
        text = resources.files("speechprint.data").joinpath("transfer-patterns.yaml").read_text()
        name = "transfer-patterns.yaml"
    else:
        text, name = Path(path).read_text(encoding="utf-8"), str(path)
    return _parse(text, name)


@functools.cache
def _parse(text: str, name: str) -> list[Pattern]:
    rows = yaml.safe_load(text)
    if not isinstance(rows, list):
        raise DataError(f"{name}: expected a list of patterns")
    patterns = []
    for n, row in enumerate(rows):
        try:
            patterns.append(Pattern.model_validate(row))
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise DataError(f"{name}, pattern {n + 1} ({where}): {first['msg']}") from None
    ids = [p.id for p in patterns]
    if len(set(ids)) != len(ids):
        raise DataError(f"{name}: pattern ids repeat")
    return patterns


def speaker_rates(slots: pd.DataFrame, pattern: Pattern) -> pd.Series:
    """Per speaker, the share of measured slots of the pattern's expected phonemes (in its
    position) heard as its realisations. ``slots``: ``sounds.slot_table`` rows."""
    pairs = pattern.pairs()
    expected = {e for e, _ in pairs}
    rows = slots[slots["expected"].isin(expected) & (slots["heard"] != "")]
    if pattern.position == "final":
        rows = rows[rows["final"]]
    hit = [(e, h) in pairs for e, h in zip(rows["expected"], rows["heard"], strict=True)]
    return rows.assign(hit=hit).groupby("speaker")["hit"].mean()


def check_pattern(
    slots: pd.DataFrame, speakers: pd.DataFrame, pattern: Pattern, *, n_boot: int = 1000
) -> dict[str, object]:
    """The pattern's group against the native speakers: rates, intervals and a verdict.
    ``speakers``: one row per speaker with ``speaker`` and ``native_language``."""
    rates = speaker_rates(slots, pattern)
    language = speakers.set_index("speaker")["native_language"].reindex(rates.index)
    group = rates[language.isin(pattern.languages).to_numpy()].to_numpy()
    native = rates[(language == NATIVE).to_numpy()].to_numpy()
    # Other learners: a change every learner makes is non-nativeness, not this L1's transfer.
    others = rates[(~language.isin([*pattern.languages, NATIVE])).to_numpy()].to_numpy()
    row: dict[str, object] = {
        "pattern": pattern.id,
        "languages": "/".join(pattern.languages),
        "changes": pattern.label,
        "position": pattern.position,
        "speakers": len(group),
        "native_speakers": len(native),
        "source": pattern.source,
    }
    if len(group) < MIN_SPEAKERS or len(native) < MIN_SPEAKERS:
        return row | {"verdict": TOO_THIN}
    low, high = diff_interval(group, native, n_boot=n_boot)
    g_low, g_high = mean_interval(group, n_boot=n_boot)
    if len(others) >= MIN_SPEAKERS:
        o_low, _ = diff_interval(group, others, n_boot=n_boot)
        row |= {"others_rate": float(others.mean()), "specific": bool(o_low > 0)}
    return row | {
        "rate": float(group.mean()),
        "rate_low": g_low,
        "rate_high": g_high,
        "native_rate": float(native.mean()),
        "diff_low": low,
        "diff_high": high,
        "verdict": FOUND if low > 0 else NOT_FOUND,
    }


def check_all(slots: pd.DataFrame, speakers: pd.DataFrame, patterns: list[Pattern]) -> pd.DataFrame:
    """Every pattern reported, found or not or too thin."""
    return pd.DataFrame([check_pattern(slots, speakers, p) for p in patterns])


def mean_interval(values: np.ndarray, *, n_boot: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95% bootstrap interval of the mean over speakers."""
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (n_boot, len(values)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def diff_interval(
    group: np.ndarray, native: np.ndarray, *, n_boot: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """95% bootstrap interval of mean(group) - mean(native), speakers resampled on each side."""
    rng = np.random.default_rng(seed)
    a = group[rng.integers(0, len(group), (n_boot, len(group)))].mean(axis=1)
    b = native[rng.integers(0, len(native), (n_boot, len(native)))].mean(axis=1)
    low, high = np.percentile(a - b, [2.5, 97.5])
    return float(low), float(high)
