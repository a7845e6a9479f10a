"""What every corpus reader shares: folder checks, accent tables, the cleaned ``Archive``."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from speechprint.data.archive import AUDIO_EXTENSIONS, Archive, ArchiveError, assign_regions
from speechprint.data.regions import UNCLASSIFIED, RegionTable

# ``text``: what the clip says, where the corpus has a transcript (NaN where it has none); kept
# as written (not lower-cased): alignment and recognition read it.
COLUMNS = (
    "speakerid",
    "filename",
    "path",
    "native_language",
    "country",
    "sex",
    "age",
    "accent",
    "text",
)
TEXT_COLUMNS = ("native_language", "country", "sex", "accent", "birthplace")
ACCENT_FIELDS = ("region", "country", "native_language")


def check_folder(root: Path, corpus: str, expected: str) -> Path:
    """``root`` exists and is a folder; otherwise an ``ArchiveError`` saying what was expected."""
    if not root.exists():
        raise ArchiveError(f"{corpus} corpus not found: {root} does not exist")
    if not root.is_dir():
        raise ArchiveError(f"{corpus} corpus must be a folder ({expected}), got the file {root}")
    return root


def audio_files(folder: Path) -> list[Path]:
    """Audio files directly in ``folder``, sorted (one listing, no stat per extension)."""
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()
    )


@lru_cache(maxsize=8)
def accent_table(name: str) -> dict[str, dict[str, str]]:
    """Packaged ``accents-<name>.csv``: lower-cased accent -> region, country, native_language.

    Empty cells mean "not known from the accent alone" (a region without one country, say).
    """
    text = files("speechprint.data").joinpath(f"accents-{name}.csv").read_text("utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    return {
        row["accent"].strip().lower(): {
            k: (row.get(k) or "").strip().lower() for k in ACCENT_FIELDS
        }
        for row in rows
    }


def map_accents(
    accents: pd.Series, table: dict[str, dict[str, str]], *, separator: str | None = None
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Per speaker (``accents`` indexed by speaker): region, country, native_language.

    A speaker may name several accents (``separator``): a field is kept when every mapped accent
    agrees on it and left empty otherwise. Accents the table does not know are counted, by
    speaker, in the returned ``{accent: speakers}``.
    """
    unmapped: Counter[str] = Counter()
    out: dict[str, dict[str, Any]] = {}
    for speaker, text in accents.items():
        parts = _parts(text, separator)
        known = [table[p] for p in parts if p in table]
        unmapped.update({p for p in parts if p not in table})
        fields: dict[str, Any] = {}
        for name in ACCENT_FIELDS:
            values = {k[name] for k in known if k[name]}
            fields[name] = values.pop() if len(values) == 1 else np.nan
        out[speaker] = fields
    frame = pd.DataFrame.from_dict(out, orient="index", columns=list(ACCENT_FIELDS))
    return frame, dict(sorted(unmapped.items(), key=lambda kv: (-kv[1], kv[0])))


def _parts(text: object, separator: str | None) -> list[str]:
    if not isinstance(text, str) or not text.strip():
        return []
    pieces = text.split(separator) if separator else [text]
    return [p.strip().lower() for p in pieces if p.strip()]


def read_transcript(path: Path) -> str | None:
    """A clip's transcript file (VCTK's ``txt/``, L2-ARCTIC's ``transcript/``), or None when the
    corpus copy has none: a missing transcript is normal, the clip is still usable."""
    try:
        text = " ".join(path.read_text("utf-8", errors="replace").split())
    except OSError:
        return None
    return text or None


def most_common(values: Iterable[object]) -> object:
    """The most frequent non-empty value (ties: the smallest), or NaN when there is none."""
    counts = Counter(v for v in values if isinstance(v, str) and v.strip())
    if not counts:
        return np.nan
    top = max(counts.values())
    return min(v for v, n in counts.items() if n == top)


def finish(
    root: Path,
    audio_dir: Path,
    rows: pd.DataFrame,
    table: RegionTable,
    corpus: str,
    *,
    unmapped_accents: dict[str, int] | None = None,
    notes: dict[str, Any] | None = None,
) -> Archive:
    """Clean the reader's rows like the archive's (trimmed, lower-cased, numeric ages) and add
    ``region`` through ``table`` (a region the accent names is kept where no country gives one)."""
    frame = rows.copy()
    for column in COLUMNS:
        if column not in frame.columns:
            frame[column] = np.nan
    for column in (c for c in TEXT_COLUMNS if c in frame.columns):
        frame[column] = frame[column].map(
            lambda v: v.strip().lower() or np.nan if isinstance(v, str) else np.nan
        )
    frame["age"] = pd.to_numeric(frame["age"], errors="coerce")
    frame["speakerid"] = frame["speakerid"].astype(str)
    frame["path"] = pd.Series(
        [p if isinstance(p, str) else None for p in frame["path"]], index=frame.index, dtype=object
    )
    if "region" in frame.columns:
        frame["region"] = frame["region"].where(frame["region"].notna(), UNCLASSIFIED)
    unmapped = assign_regions(frame, table, stacklevel=4)
    frame = frame.sort_values(["speakerid", "filename"], kind="stable").reset_index(drop=True)
    return Archive(
        root,
        audio_dir,
        frame,
        unmapped,
        table,
        corpus=corpus,
        unmapped_accents=dict(unmapped_accents or {}),
        notes=dict(notes or {}),
    )
