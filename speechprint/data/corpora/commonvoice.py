"""Common Voice (English): ``validated.tsv`` (or ``train/dev/test.tsv``) beside ``clips/*.mp3``.

The TSVs are tab-separated and *unquoted*: sentences hold bare ``"`` characters, so they are read
with quoting off (a CSV reader would swallow rows). ``accents`` is free text the speaker typed or
picked, several separated by ``|`` (releases before 8.0 call the column ``accent`` and use short
codes such as ``us``); the speaker's accent is the one most of their clips carry, mapped to
region, country and native language by the packaged ``accents-commonvoice.csv``. Accents it does
not know are counted per speaker and listed (``Archive.unmapped_accents``).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from speechprint.data.archive import Archive, ArchiveError
from speechprint.data.corpora.common import (
    accent_table,
    audio_files,
    check_folder,
    finish,
    map_accents,
    most_common,
)
from speechprint.data.corpora.registry import CORPORA
from speechprint.data.regions import RegionTable

SPLIT_FILES = ("train.tsv", "dev.tsv", "test.tsv")
REQUIRED = ("client_id", "path")
AGES = {
    "teens": 15,
    "twenties": 25,
    "thirties": 35,
    "fourties": 45,
    "forties": 45,
    "fifties": 55,
    "sixties": 65,
    "seventies": 75,
    "eighties": 85,
    "nineties": 95,
}
SEPARATOR = "|"


@CORPORA.register("commonvoice", description="Common Voice English (validated.tsv + clips/)")
def load_commonvoice(root: Path, table: RegionTable) -> Archive:
    check_folder(root, "commonvoice", "validated.tsv beside clips/")
    clips = root / "clips"
    if not clips.is_dir():
        raise ArchiveError(f"no clips/ folder in {root} (Common Voice keeps its mp3 files there)")
    raw, sources = _read_tsvs(root)
    accent_column = "accents" if "accents" in raw.columns else "accent"
    available = {p.name: p for p in audio_files(clips)}
    rows = pd.DataFrame(
        {
            "speakerid": raw["client_id"].str.strip(),
            "filename": raw["path"].str.strip(),
            "path": [
                str(available[n]) if n in available else None for n in raw["path"].str.strip()
            ],
            "sex": raw.get("gender", pd.Series(np.nan, raw.index)).map(_sex),
            "age": raw.get("age", pd.Series(np.nan, raw.index)).map(_age),
            "clip_accent": raw.get(accent_column, pd.Series(np.nan, raw.index)),
            "text": raw.get("sentence", pd.Series(np.nan, raw.index)),
        }
    )
    rows = rows[rows["speakerid"].fillna("") != ""]
    per_speaker = rows.groupby("speakerid", sort=True)["clip_accent"].agg(most_common)
    mapped, unmapped = map_accents(per_speaker, accent_table("commonvoice"), separator=SEPARATOR)
    rows = rows.join(mapped, on="speakerid")
    rows["accent"] = rows["speakerid"].map(per_speaker)
    notes = {
        "tsv_files": sources,
        "clips_without_audio": int(rows["path"].isna().sum()),
        "speakers_with_several_accents": int(per_speaker.map(_several).sum()),
    }
    return finish(
        root,
        clips,
        rows.drop(columns="clip_accent"),
        table,
        "commonvoice",
        unmapped_accents=unmapped,
        notes=notes,
    )


def _read_tsvs(root: Path) -> tuple[pd.DataFrame, list[str]]:
    """``validated.tsv`` (every validated clip), else the union of the split files."""
    names = (
        ["validated.tsv"]
        if (root / "validated.tsv").exists()
        else [n for n in SPLIT_FILES if (root / n).exists()]
    )
    if not names:
        raise ArchiveError(f"{root}: no validated.tsv (nor {', '.join(SPLIT_FILES)}) found")
    frames = []
    for name in names:
        path = root / name
        try:
            frame = pd.read_csv(
                path,
                sep="\t",
                dtype=str,
                quoting=csv.QUOTE_NONE,
                keep_default_na=False,
                na_values=[""],
            )
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
            raise ArchiveError(f"{path}: cannot parse TSV ({error})") from error
        frame.columns = [str(c).strip() for c in frame.columns]
        missing = [c for c in REQUIRED if c not in frame.columns]
        if missing:
            raise ArchiveError(
                f"{path}: missing required column(s) {', '.join(missing)} "
                f"(found: {', '.join(frame.columns)})"
            )
        frames.append(frame)
    raw = pd.concat(frames, ignore_index=True).drop_duplicates("path").reset_index(drop=True)
    raw["path"] = raw["path"].fillna("")
    return raw, names


def _sex(value: object) -> object:
    """``male``/``male_masculine`` -> male, ``female``/``female_feminine`` -> female."""
    if not isinstance(value, str):
        return np.nan
    head = value.strip().lower().split("_")[0]
    return head if head in ("male", "female") else np.nan


def _age(value: object) -> float:
    return float(AGES.get(value.strip().lower(), np.nan)) if isinstance(value, str) else np.nan


def _several(text: object) -> bool:
    return isinstance(text, str) and len([p for p in text.split(SEPARATOR) if p.strip()]) > 1
