"""A speaker's short clips joined into one recording, for models trained on long ones.

A model trained on the archive heard one 16-85 s reading per speaker; speechocean762's clips last
2-5 s. Utterance statistics over 3 s of speech are not those over 20 s: averaging a speaker's
per-clip answers is not the same as listening to all of their speech at once. ``join_clips``
writes each speaker's first clips (by file name) as one 16 kHz FLAC, a short silence between
them, under the feature cache (named by what went in, so a second evaluation reuses them), and
returns one row per speaker pointing at it, with the clips' transcripts joined as its ``text``.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from speechprint.core.errors import ConfigError
from speechprint.data.audio import AudioError, load_audio
from speechprint.features.pretrained.common import WHISPER_SR

log = logging.getLogger(__name__)

GAP_SECONDS = 0.3  # between joined clips: a pause, not a cut mid-word
FOLDER = "joined-clips"


def join_clips(rows: pd.DataFrame, per_speaker: int, cache_root: Path) -> pd.DataFrame:
    """One row per speaker: their first ``per_speaker`` clips as one recording (unreadable
    clips are left out of it and logged; a speaker with none left is dropped)."""
    if per_speaker < 1:
        raise ConfigError(f"--join-clips must be at least 1, got {per_speaker}")
    folder = cache_root / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    ordered = rows.sort_values(["speakerid", "filename"], kind="stable")
    joined = []
    for _, clips in ordered.groupby("speakerid", sort=True):
        clips = clips.head(per_speaker)
        target = folder / f"{_name(list(clips['path']))}.flac"
        if not target.exists() and not _write(list(clips["path"]), target):
            continue
        row = clips.iloc[0].copy()
        row["path"] = str(target)
        if "text" in clips.columns:
            row["text"] = " ".join(t for t in clips["text"] if isinstance(t, str) and t.strip())
        joined.append(row)
    return pd.DataFrame(joined).reset_index(drop=True)


def _name(paths: list[str]) -> str:
    """Named by the sources and how they are joined: the same clips give the same file."""
    blob = repr((sorted(paths), GAP_SECONDS, WHISPER_SR)).encode()
    return hashlib.sha1(blob).hexdigest()[:24]


def _write(paths: list[str], target: Path) -> bool:
    gap = np.zeros(int(GAP_SECONDS * WHISPER_SR), dtype=np.float32)
    parts: list[np.ndarray] = []
    for path in paths:
        try:
            parts += [load_audio(path, WHISPER_SR), gap]
        except AudioError as error:
            log.warning("left out of its speaker's joined recording: %s", error)
    if not parts:
        return False
    tmp = target.with_name(f".tmp-{target.name}")
    sf.write(tmp, np.concatenate(parts[:-1]), WHISPER_SR, format="FLAC")
    tmp.replace(target)
    return True
