"""VCTK: ``speaker-info.txt`` beside ``wav48_silence_trimmed/pNNN/*.flac`` (or ``wav48/*.wav``).

``speaker-info.txt`` is whitespace-aligned text, not CSV: ``ID AGE GENDER ACCENTS REGION``, where
REGION may be several words, missing, or followed by a comment in parentheses (``p280 ... France
(mic2 files unavailable)``); release 0.80 writes ids without the ``p``. Release 0.92 records each
utterance with two microphones (``_mic1``, ``_mic2``): only mic1 is kept where both exist, so one
utterance is one clip. The accent maps to region and country by ``accents-vctk.csv``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from speechprint.data.archive import Archive, ArchiveError
from speechprint.data.corpora.common import (
    accent_table,
    audio_files,
    check_folder,
    finish,
    map_accents,
    read_transcript,
)
from speechprint.data.corpora.registry import CORPORA
from speechprint.data.regions import RegionTable

INFO_FILE = "speaker-info.txt"
_COMMENT = re.compile(r"\(.*?\)")


@CORPORA.register("vctk", description="VCTK (speaker-info.txt + wav48*/pNNN/)")
def load_vctk(root: Path, table: RegionTable) -> Archive:
    check_folder(root, "vctk", f"{INFO_FILE} beside wav48_silence_trimmed/")
    info_path = root / INFO_FILE
    if not info_path.exists():
        raise ArchiveError(f"{info_path} not found (expected {INFO_FILE} beside wav48*/)")
    info, malformed = parse_speaker_info(info_path.read_text("utf-8", errors="replace"))
    audio_dir = _audio_root(root)
    clips = _clips(audio_dir)
    rows, silent = [], []
    for speaker, meta in info.items():
        files = clips.pop(speaker, [])
        rows += [
            {**meta, "filename": p.stem, "path": str(p), "text": _transcript(root, speaker, p)}
            for p in files
        ]
        if not files:  # kept and counted, as the archive keeps rows without audio
            rows.append({**meta, "filename": speaker, "path": None})
            silent.append(speaker)
    for speaker, files in clips.items():  # audio without a speaker-info row: no labels
        rows += [{"speakerid": speaker, "filename": p.stem, "path": str(p)} for p in files]
    frame = pd.DataFrame(rows)
    per_speaker = frame.groupby("speakerid", sort=True)["accent"].first()
    mapped, unmapped = map_accents(per_speaker, accent_table("vctk"))
    frame = frame.join(mapped, on="speakerid")
    notes = {
        "malformed_info_lines": malformed,
        "speakers_without_info": sorted(clips),
        "speakers_without_audio": sorted(silent),
    }
    return finish(root, audio_dir, frame, table, "vctk", unmapped_accents=unmapped, notes=notes)


def parse_speaker_info(text: str) -> tuple[dict[str, dict[str, object]], list[str]]:
    """``{speaker: {speakerid, age, sex, accent, birthplace}}`` and the lines that do not parse."""
    info: dict[str, dict[str, object]] = {}
    malformed: list[str] = []
    for line in text.splitlines()[1:]:  # the first line is the header
        fields = _COMMENT.sub(" ", line).split()
        if not fields:
            continue
        if len(fields) < 4 or not fields[1].isdigit():
            malformed.append(line.strip())
            continue
        speaker = _speaker_id(fields[0])
        sex = {"f": "female", "m": "male"}.get(fields[2].lower())
        region = " ".join(fields[4:]) or None
        info[speaker] = {
            "speakerid": speaker,
            "age": fields[1],
            "sex": sex,
            "accent": fields[3],
            "birthplace": region,
        }
    return info, malformed


def _transcript(root: Path, speaker: str, clip: Path) -> str | None:
    """``txt/pNNN/pNNN_001.txt`` beside the audio folder (one text for both microphones)."""
    stem = clip.stem.removesuffix("_mic1").removesuffix("_mic2")
    return read_transcript(root / "txt" / speaker / f"{stem}.txt")


def _speaker_id(raw: str) -> str:
    raw = raw.strip().lower()
    return f"p{raw}" if raw.isdigit() else raw


def _audio_root(root: Path) -> Path:
    for name in ("wav48_silence_trimmed", "wav48", "wav"):
        if (root / name).is_dir():
            return root / name
    candidates = sorted(p for p in root.glob("wav48*") if p.is_dir())
    if candidates:
        return candidates[0]
    raise ArchiveError(f"no wav48_silence_trimmed/ (or wav48/) folder in {root}")


def _clips(audio_dir: Path) -> dict[str, list[Path]]:
    """``{speaker: audio files}``; mic2 files are dropped where their mic1 twin exists."""
    out: dict[str, list[Path]] = {}
    for folder in sorted(p for p in audio_dir.iterdir() if p.is_dir()):
        files = audio_files(folder)
        stems = {p.stem for p in files}
        kept = [p for p in files if not (p.stem.endswith("_mic2") and p.stem[:-1] + "1" in stems)]
        if kept:
            out[_speaker_id(folder.name)] = kept
    return out
