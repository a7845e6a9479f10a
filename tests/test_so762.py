"""The speechocean762 reader on the corpus's real files (../shared/data/so762, Kaldi layout)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from speechprint.data.archive import ArchiveError
from speechprint.data.corpora import load_corpus
from speechprint.evaluation.units import by_speaker


def test_reader_on_the_real_files(shared_so762: Path) -> None:
    archive = load_corpus(shared_so762, "speechocean762")
    clips = archive.with_audio
    assert archive.corpus == "speechocean762" and len(clips) == 2500
    assert clips["speakerid"].nunique() == 125 and archive.rows_without_audio == 0
    # Every speaker's first language is Mandarin: country china, the seed's region east asian.
    assert set(clips["native_language"]) == {"mandarin"} and set(clips["country"]) == {"china"}
    assert set(clips["region"]) == {"east asian"}
    first = clips[clips["filename"] == "000010011"].iloc[0]
    assert (first["speakerid"], first["text"], first["age"], first["sex"]) == (
        "0001",
        "WE CALL IT BEAR",
        6.0,
        "male",
    )
    assert Path(first["path"]).name == "000010011.mp3" and Path(first["path"]).exists()
    speakers = clips.groupby("speakerid").agg(age=("age", "first"), sex=("sex", "first"))
    assert (speakers["age"] >= 18).sum() == 67 and (speakers["age"] < 18).sum() == 58
    assert speakers["sex"].value_counts().to_dict() == {"female": 67, "male": 58}
    assert clips["text"].notna().all() and archive.notes["children_under_18"] == 58
    # What each file says, by path: what extractors that read the text (phones) are given.
    assert archive.texts()[first["path"]] == "WE CALL IT BEAR" and len(archive.texts()) == 2500


def test_a_speakers_clips_join_into_one_unit(shared_so762: Path) -> None:
    """``unit: speaker``: a speaker's 20 clips become one scored row (their mean)."""
    clips = load_corpus(shared_so762, "speechocean762").with_audio
    proba = [[1.0, 0.0] if i % 2 else [0.0, 1.0] for i in range(len(clips))]
    mean, _, order = by_speaker(proba, [0] * len(clips), list(clips["speakerid"]))
    assert len(order) == 125 and mean.shape == (125, 2)
    assert clips.groupby("speakerid").size().eq(20).all()


def test_missing_audio_is_reported_in_one_line(
    shared_so762: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A copy whose wav.scp names two absent files (and an empty one): rows kept without audio,
    one warning naming them."""
    root = tmp_path / "so762"
    (root / "train").mkdir(parents=True)
    for name in ("text", "utt2spk", "spk2age", "spk2gender"):
        shutil.copy(shared_so762 / "train" / name, root / "train" / name)
    lines = (shared_so762 / "train" / "wav.scp").read_text().splitlines()[:3]
    first_utt, first_path = lines[0].split("\t")
    (root / first_path).parent.mkdir(parents=True)
    shutil.copy(shared_so762 / first_path, root / first_path)
    (root / lines[1].split("\t")[1]).write_bytes(b"")  # an empty file
    (root / "train" / "wav.scp").write_text("\n".join(lines) + "\n")
    with caplog.at_level(logging.WARNING, logger="speechprint.data.corpora.speechocean762"):
        archive = load_corpus(root, "speechocean762")
    assert len(archive.speakers) == 3 and list(archive.with_audio["filename"]) == [first_utt]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "2 clip(s) listed in wav.scp have no audio file" in warnings[0]
    # One split's folder on its own reads the same.
    assert len(load_corpus(root / "train", "speechocean762").speakers) == 3


def test_a_folder_without_kaldi_tables_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="no speechocean762 split found .*train/wav.scp"):
        load_corpus(tmp_path, "speechocean762")
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "wav.scp").write_text("u1 WAVE/u1.mp3\n")
    (tmp_path / "train" / "utt2spk").write_text("u1\n")
    with pytest.raises(ArchiveError, match=r"utt2spk, line 1: expected 'key value'"):
        load_corpus(tmp_path, "speechocean762")
