"""speechocean762: Mandarin-L1 speakers reading short English sentences, in Kaldi's layout.

The corpus (Zhang et al., Interspeech 2021) keeps each split in a folder of Kaldi tables:
``train/wav.scp`` (utterance id, audio path relative to the corpus root), ``train/text``
(utterance id, upper-case transcript), ``train/utt2spk``, ``train/spk2age``, ``train/spk2gender``.
Every speaker's first language is Mandarin, so every clip is labelled native language
``mandarin``, country ``china`` (the seed table's region ``east asian``); the transcript becomes
the ``text`` column. About half the speakers are children: ``age`` keeps them apart.

The root may be the corpus folder (with ``train/`` and/or ``test/``) or one split's folder.
A clip whose audio file is missing or empty keeps its row without a ``path`` (as the archive
keeps speakers without a recording) and the reader logs one line saying how many and which.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from speechprint.data.archive import Archive, ArchiveError
from speechprint.data.corpora.common import check_folder, finish
from speechprint.data.corpora.registry import CORPORA
from speechprint.data.regions import RegionTable

log = logging.getLogger(__name__)

SPLITS = ("train", "test")
REQUIRED = ("wav.scp", "utt2spk")
SEX = {"m": "male", "f": "female"}
# Every speaker of the corpus: its README says so (the labels are the corpus's, not guessed).
LABELS = {"native_language": "mandarin", "country": "china", "accent": "mandarin"}


@CORPORA.register(
    "speechocean762", description="speechocean762 (Kaldi layout: train/wav.scp, text, utt2spk)"
)
def load_speechocean762(root: Path, table: RegionTable) -> Archive:
    check_folder(root, "speechocean762", "train/ with wav.scp, text, utt2spk")
    splits = _split_folders(root)
    frames = [_read_split(folder) for folder in splits]
    frame = pd.concat(frames, ignore_index=True)
    frame["age"] = pd.to_numeric(frame["age"], errors="coerce")
    missing = frame.loc[frame["path"].isna(), "filename"].tolist()
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        log.warning(
            "speechocean762 %s: %d clip(s) listed in wav.scp have no audio file (missing or "
            "empty), skipped: %s",
            root,
            len(missing),
            shown,
        )
    notes = {
        "splits": [f.name for f in splits],
        "clips_without_audio": len(missing),
        "children_under_18": int(frame.groupby("speakerid")["age"].first().lt(18).sum()),
    }
    return finish(root, root, frame, table, "speechocean762", notes=notes)


def _split_folders(root: Path) -> list[Path]:
    """The split folders under ``root`` (``train``, ``test``), or ``root`` itself if it is one."""
    if all((root / name).is_file() for name in REQUIRED):
        return [root]
    found = [root / s for s in SPLITS if all((root / s / n).is_file() for n in REQUIRED)]
    if not found:
        raise ArchiveError(
            f"{root}: no speechocean762 split found (expected train/wav.scp and train/utt2spk, "
            "Kaldi style)"
        )
    return found


def _read_split(folder: Path) -> pd.DataFrame:
    """One row per utterance of ``wav.scp``: speaker, audio path, transcript, age, sex."""
    # wav.scp paths are relative to the corpus root (``WAVE/SPEAKERnnnn/<utt>.mp3``); a split
    # folder given on its own is still inside that root.
    corpus_root = folder.parent
    wavs = read_table(folder / "wav.scp")
    speaker_of = read_table(folder / "utt2spk")
    texts = read_table(folder / "text", required=False)
    ages = read_table(folder / "spk2age", required=False)
    sexes = read_table(folder / "spk2gender", required=False)
    rows = []
    for utt, relative in wavs.items():
        if utt not in speaker_of:
            raise ArchiveError(f"{folder / 'utt2spk'}: no speaker for utterance {utt}")
        speaker = speaker_of[utt]
        rows.append(
            {
                "speakerid": speaker,
                "filename": utt,
                "path": _audio_path(corpus_root, relative),
                "text": texts.get(utt),
                "age": ages.get(speaker),
                "sex": SEX.get((sexes.get(speaker) or "").lower()),
                "corpus_split": folder.name,  # the corpus's own split, not a model's
                **LABELS,
            }
        )
    if not rows:
        raise ArchiveError(f"{folder / 'wav.scp'}: no utterances listed")
    return pd.DataFrame(rows)


def read_table(path: Path, *, required: bool = True) -> dict[str, str]:
    """A Kaldi table: ``key<whitespace>value`` per line (the value may hold spaces)."""
    if not path.exists():
        if required:
            raise ArchiveError(f"{path} not found (a Kaldi table: key, then value, per line)")
        return {}
    try:
        lines = path.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ArchiveError(f"{path}: cannot read ({error})") from error
    table: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        key, _, value = line.strip().partition(" ") if "\t" not in line else line.partition("\t")
        if not value.strip():
            raise ArchiveError(f"{path}, line {number}: expected 'key value', got {line!r}")
        table[key.strip()] = value.strip()
    return table


def _audio_path(corpus_root: Path, relative: str) -> str | None:
    """The clip's file when it exists and is not empty, else None (reported by the caller)."""
    path = Path(relative)
    path = path if path.is_absolute() else corpus_root / path
    try:
        return str(path) if path.stat().st_size > 0 else None
    except OSError:
        return None
