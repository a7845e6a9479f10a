"""L2-ARCTIC: one folder per speaker (``ABA/wav/arctic_a0001.wav``), 24 non-native speakers.

The speaker's native language comes from the corpus's speaker table: the markdown table of its
``README.md`` (``| Speaker | Gender | Native Language | ...``) when the folder has one, else the
packaged copy of that table (``l2arctic-speakers.csv``). A folder the table does not name keeps its
clips with an unknown language (listed in ``notes``). Language -> country and region:
``accents-l2arctic.csv``.
"""

from __future__ import annotations

import csv
from importlib.resources import files
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

README = "README.md"


@CORPORA.register("l2arctic", description="L2-ARCTIC (one folder per speaker, wav/*.wav)")
def load_l2arctic(root: Path, table: RegionTable) -> Archive:
    check_folder(root, "l2arctic", "one folder per speaker with wav/")
    speakers, source = speaker_table(root)
    rows, unknown = [], []
    clip_dirs = {p: _clip_dir(p) for p in root.iterdir() if p.is_dir()}
    folders = sorted(p for p, clips in clip_dirs.items() if clips is not None)
    if not folders:
        raise ArchiveError(f"{root}: no speaker folders with wav/ audio (e.g. ABA/wav/*.wav)")
    for folder in folders:
        speaker = folder.name.upper()
        meta = speakers.get(speaker)
        if meta is None:
            unknown.append(folder.name)
            meta = {}
        rows += [
            {
                "speakerid": speaker,
                "filename": p.stem,
                "path": str(p),
                "text": read_transcript(folder / "transcript" / f"{p.stem}.txt"),
                **meta,
            }
            for p in audio_files(clip_dirs[folder] or folder)
        ]
    frame = pd.DataFrame(rows)
    frame["accent"] = frame.get("native_language")
    per_speaker = frame.groupby("speakerid", sort=True)["accent"].first()
    mapped, unmapped = map_accents(per_speaker, accent_table("l2arctic"))
    # The table's language stays the speaker's native language, mapped or not.
    frame = frame.join(mapped[["region", "country"]], on="speakerid")
    notes = {"speaker_table": source, "speakers_not_in_table": unknown}
    return finish(root, root, frame, table, "l2arctic", unmapped_accents=unmapped, notes=notes)


def speaker_table(root: Path) -> tuple[dict[str, dict[str, str]], str]:
    """``{SPEAKER: {sex, native_language}}`` from ``README.md``'s table, else the packaged one."""
    readme = root / README
    if readme.exists():
        parsed = parse_markdown_table(readme.read_text("utf-8", errors="replace"))
        if parsed:
            return parsed, str(readme)
    text = files("speechprint.data").joinpath("l2arctic-speakers.csv").read_text("utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    return {
        r["speaker"].upper(): {"sex": r["sex"], "native_language": r["native_language"]}
        for r in rows
    }, "packaged l2arctic-speakers.csv"


def parse_markdown_table(text: str) -> dict[str, dict[str, str]]:
    """The rows of the first table with Speaker and Native Language columns (cells trimmed,
    ``**bold**`` undone, the ``|---|`` rule skipped, empty cells kept empty)."""
    header: list[str] | None = None
    out: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        if not line.strip().startswith("|"):
            if header is not None and out:
                break  # the table has ended
            continue
        cells = [c.strip().strip("*").strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            lowered = [c.lower() for c in cells]
            if "speaker" in lowered and "native language" in lowered:
                header = lowered
            continue
        if all(set(c) <= set(":- ") for c in cells):
            continue
        row = dict(zip(header, cells))
        if row.get("speaker"):
            sex = {"f": "female", "m": "male"}.get(row.get("gender", "").lower(), "")
            out[row["speaker"].upper()] = {"sex": sex, "native_language": row["native language"]}
    return out


def _clip_dir(folder: Path) -> Path | None:
    """``<speaker>/wav`` (the release), or the folder itself when the audio lies directly in it."""
    for candidate in (folder / "wav", folder / folder.name / "wav", folder):
        if audio_files(candidate):
            return candidate
    return None
