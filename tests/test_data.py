"""Archive reading, audio decoding, targets and splits: tiny generated files and the real archive."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from speechprint.cli import _register_subcommands, app
from speechprint.data.archive import ArchiveError, describe_archive, load_archive
from speechprint.data.audio import AudioError, load_audio, prepare_waveform
from speechprint.data.dataset import make_dataset
from speechprint.data.regions import region_of, regions

_register_subcommands()
HEADER = "age,age_onset,birthplace,filename,native_language,sex,speakerid,country,file_missing?,Unnamed: 9"


def tone(seconds: float = 1.0, rate: int = 16000, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_archive(root: Path, rows: list[tuple[str, str, str]], *, header: str = HEADER) -> Path:
    """rows: (filename, native_language, country); audio for every row whose name has no '#'."""
    (root / "recordings").mkdir(parents=True)
    lines = [header]
    for i, (name, language, country) in enumerate(rows):
        clean = name.strip("#")
        lines.append(f"{20 + i},5,\"town, {country}\", {clean.upper()} ,{language},"
                     f"{'male' if i % 2 else 'female'},{i},{country},FALSE,")  # fmt: skip
        if "#" not in name:
            sf.write(root / "recordings" / f"{clean}.wav", tone(freq=200 + 10 * i), 16000)
    (root / "speakers_all.csv").write_text("\n".join(lines) + "\n")
    return root


# -- audio -----------------------------------------------------------------------------------------


def test_load_audio_resamples_to_mono(tmp_path: Path) -> None:
    stereo = np.stack([tone(rate=44100), tone(rate=44100)], axis=1)
    sf.write(tmp_path / "s.wav", stereo, 44100)
    wave = load_audio(tmp_path / "s.wav", 16000)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(len(wave) - 16000) <= 2


def test_mp3_flac_ogg_decode(tmp_path: Path) -> None:
    for ext, fmt in (("mp3", "MP3"), ("flac", "FLAC"), ("ogg", "OGG")):
        sf.write(tmp_path / f"a.{ext}", tone(rate=8000), 8000, format=fmt)
        assert abs(len(load_audio(tmp_path / f"a.{ext}", 16000)) - 16000) < 2000


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: sf.write(p, np.zeros(16000, np.float32), 16000), "silent"),
        (lambda p: sf.write(p, tone(0.1), 16000), "too short"),
        (lambda p: p.write_bytes(b"ID3\x04\x00garbage" * 3), "cannot decode"),
    ],
    ids=["zero-byte", "silent", "too-short", "garbage"],
)
def test_bad_audio_names_file_and_reason(tmp_path: Path, make, reason: str) -> None:  # noqa: ANN001
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(AudioError, match=reason) as caught:
        load_audio(path, 16000)
    assert caught.value.file == str(path) and str(path) in str(caught.value)


def test_truncated_mp3_is_an_audio_error(tmp_path: Path) -> None:
    sf.write(tmp_path / "full.mp3", tone(3.0), 16000, format="MP3")
    truncated = tmp_path / "truncated.mp3"
    truncated.write_bytes((tmp_path / "full.mp3").read_bytes()[:200])
    with pytest.raises(AudioError, match="truncated.mp3"):
        load_audio(truncated, 16000)


def test_prepare_waveform_accepts_channels_first() -> None:
    wave = np.stack([tone(), tone()])  # (2, n)
    assert prepare_waveform(wave, 16000, 8000).shape == (8000,)
    with pytest.raises(AudioError, match="non-finite"):
        prepare_waveform(np.full(16000, np.nan), 16000, 16000)


# -- archive ---------------------------------------------------------------------------------------


def test_archive_cleaning_and_rows_without_audio(tmp_path: Path) -> None:
    root = write_archive(
        tmp_path / "a",
        [
            ("english1", "English", " USA "),
            ("german1", "german", "Germany"),
            ("#spanish1", "spanish", "spain"),
            ("xhosa1", "xhosa", "atlantis"),
        ],  # fmt: skip
    )
    with pytest.warns(UserWarning, match="atlantis"):
        archive = load_archive(root)
    assert "Unnamed: 9" not in archive.speakers.columns
    assert archive.rows_without_audio == 1 and len(archive.with_audio) == 3
    first = archive.speakers.iloc[0]
    assert first["filename"] == "english1" and first["country"] == "usa"
    assert first["native_language"] == "english" and first["region"] == "north american"
    assert archive.unmapped_countries == ["atlantis"]
    assert region_of("atlantis") == "unclassified"


def test_recordings_recordings_layout(tmp_path: Path) -> None:
    root = write_archive(tmp_path / "a", [("english1", "english", "usa")])
    nested = root / "recordings" / "recordings"
    nested.mkdir()
    (root / "recordings" / "english1.wav").rename(nested / "english1.wav")
    assert (
        load_archive(root).with_audio["path"].iloc[0].endswith("recordings/recordings/english1.wav")
    )


def test_missing_column_is_named(tmp_path: Path) -> None:
    header = HEADER.replace("native_language", "language")
    root = write_archive(tmp_path / "a", [("english1", "english", "usa")], header=header)
    with pytest.raises(ArchiveError, match="missing required column.*native_language"):
        load_archive(root)


def test_missing_archive_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="does not exist"):
        load_archive(tmp_path / "nowhere")
    result = CliRunner().invoke(app, ["data", "describe", "--archive", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "does not exist" in result.output


# -- targets and splits -----------------------------------------------------------------------------


def many_speakers(tmp_path: Path, per_class: int = 10) -> Path:
    rows = []
    for country, language in (("usa", "english"), ("china", "mandarin"), ("india", "hindi"),
                              ("iceland", "icelandic")):  # fmt: skip
        n = per_class if country != "iceland" else 2  # a class too small to split
        rows += [(f"{language}{i}", language, country) for i in range(1, n + 1)]
    return write_archive(tmp_path / "many", rows)


def test_split_is_speaker_disjoint_stratified_and_deterministic(tmp_path: Path) -> None:
    archive = load_archive(many_speakers(tmp_path))
    dataset = make_dataset(archive, "region", min_count=3, seed=0)
    assert dataset.labels == ("east asian", "north american", "south asian")
    assert dataset.dropped_classes == {"scandinavian": 2}
    split_speakers = [set(dataset.split(s)["speakerid"]) for s in ("train", "val", "test")]
    assert not (split_speakers[0] & split_speakers[1] or split_speakers[0] & split_speakers[2]
                or split_speakers[1] & split_speakers[2])  # fmt: skip
    for split in ("train", "val", "test"):
        assert all(n >= 1 for n in dataset.class_counts(split).values())
    again = make_dataset(archive, "region", min_count=3, seed=0)
    assert again.fingerprint == dataset.fingerprint
    assert again.manifest.equals(dataset.manifest)
    other = make_dataset(archive, "region", min_count=3, seed=1)
    assert other.fingerprint != dataset.fingerprint
    languages = make_dataset(archive, "native_language", min_count=3).labels
    assert languages == ("english", "hindi", "mandarin")


def test_targets_and_min_count_validation(tmp_path: Path) -> None:
    archive = load_archive(many_speakers(tmp_path))
    assert set(make_dataset(archive, "sex", min_count=3).labels) == {"female", "male"}
    with pytest.raises(ValueError, match="unknown target"):
        make_dataset(archive, "shoe_size")
    with pytest.raises(ValueError, match="min_count must be at least 3"):
        make_dataset(archive, min_count=1)


def test_without_drops_files_and_changes_fingerprint(tmp_path: Path) -> None:
    dataset = make_dataset(load_archive(many_speakers(tmp_path)), min_count=3)
    first = dataset.manifest["path"].iloc[0]
    smaller = dataset.without([first])
    assert len(smaller.manifest) == len(dataset.manifest) - 1
    assert smaller.labels == dataset.labels and smaller.fingerprint != dataset.fingerprint


def test_describe_json_keys_on_tiny_corpus(tiny_archive: Path) -> None:
    result = CliRunner().invoke(app, ["data", "describe", "--archive", str(tiny_archive), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    for key in ("rows", "with_audio", "without_audio", "unreadable", "by_region",
                "by_native_language"):  # fmt: skip
        assert key in summary
    assert summary["rows"] == summary["with_audio"] + summary["without_audio"]


def test_describe_reports_unreadable_and_writes_plots(tmp_path: Path) -> None:
    root = write_archive(
        tmp_path / "a", [("english1", "english", "usa"), ("german1", "german", "germany")]
    )
    (root / "recordings" / "german1.wav").write_bytes(b"")
    summary = describe_archive(load_archive(root))
    assert summary["unreadable"] == [{"file": "german1.wav", "reason": "empty file (0 bytes)"}]
    result = CliRunner().invoke(app, ["data", "describe", "--archive", str(root), "--out",
                                      str(tmp_path / "plots")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "plots").glob("*.png"))) == 4


# -- the real archive -------------------------------------------------------------------------------


@pytest.mark.shared
def test_real_archive_counts(shared_archive: Path) -> None:
    summary = describe_archive(load_archive(shared_archive), check_audio=False)
    assert summary["rows"] == 1901
    assert summary["with_audio"] == 1079
    assert summary["regions"] == 17 and len(regions()) == 17
    assert summary["by_region"]["north american"] == 348
    assert summary["by_region"]["scandinavian"] == 6


@pytest.mark.shared
def test_real_archive_split_keeps_all_17_regions(shared_archive: Path) -> None:
    dataset = make_dataset(load_archive(shared_archive), "region", min_count=5, seed=0)
    assert len(dataset.labels) == 17
    for split in ("train", "val", "test"):
        assert min(dataset.class_counts(split).values()) >= 1
