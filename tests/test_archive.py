"""Archive reading and cleaning on a tiny hand-written CSV, its region column, the real archive."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from speechprint.core.errors import DataError
from speechprint.data.archive import ArchiveError, describe_archive, load_archive, plot_overview
from speechprint.data.regions import UNCLASSIFIED, region_table

# The real archive's header, with its empty ``Unnamed: 9`` column and ``file_missing?`` flag.
HEADER = "age,age_onset,birthplace,filename,native_language,sex,speakerid,country,file_missing?,Unnamed: 9"


def tone(seconds: float = 1.0, rate: int = 16000, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_archive(
    root: Path, rows: list[tuple[str, str, str]], *, header: str = HEADER, ext: str = "wav"
) -> Path:
    """rows: (filename, native_language, country); audio for every row whose name has no '#'.

    File names are written upper-cased with stray spaces, as messy as the real CSV.
    """
    (root / "recordings").mkdir(parents=True)
    lines = [header]
    for i, (name, language, country) in enumerate(rows):
        clean = name.strip("#")
        sex = "male" if i % 2 else "female"
        lines.append(
            f'{20 + i},5,"town, {country}", {clean.upper()} ,{language},{sex},{i},{country},FALSE,'
        )
        if "#" not in name:
            sf.write(root / "recordings" / f"{clean}.{ext}", tone(freq=200 + 10 * i), 16000)
    (root / "speakers_all.csv").write_text("\n".join(lines) + "\n")
    return root


def test_cleaning_and_rows_without_audio(tmp_path: Path) -> None:
    root = write_archive(
        tmp_path / "a",
        [
            ("english1", "English", " USA "),
            ("german1", "german", "Germany"),
            ("#spanish1", "spanish", "spain"),
            ("xhosa1", "xhosa", "atlantis"),
        ],
    )
    with pytest.warns(UserWarning, match="atlantis"):
        archive = load_archive(root)
    speakers = archive.speakers
    assert not [c for c in speakers.columns if c.startswith("Unnamed")]
    for column in (
        "speakerid",
        "filename",
        "native_language",
        "country",
        "sex",
        "age",
        "age_onset",
        "birthplace",
        "region",
        "path",
    ):
        assert column in speakers.columns
    assert len(speakers) == 4 and archive.rows_without_audio == 1 and len(archive.with_audio) == 3
    first = speakers.iloc[0]
    assert first["filename"] == "english1" and first["country"] == "usa"
    assert first["native_language"] == "english" and first["region"] == "north american"
    assert first["age"] == 20 and pd.api.types.is_numeric_dtype(speakers["age"])
    assert speakers.loc[2, "path"] is None  # kept and counted, just without audio
    assert archive.unmapped_countries == ["atlantis"]
    assert speakers.loc[3, "region"] == UNCLASSIFIED


def test_every_audio_extension_is_found(tmp_path: Path) -> None:
    for ext in ("flac", "ogg"):
        root = write_archive(tmp_path / ext, [("english1", "english", "usa")], ext=ext)
        assert load_archive(root).with_audio["path"].iloc[0].endswith(f"english1.{ext}")


def test_recordings_recordings_layout(tmp_path: Path) -> None:
    root = write_archive(tmp_path / "a", [("english1", "english", "usa")])
    nested = root / "recordings" / "recordings"
    nested.mkdir()
    (root / "recordings" / "english1.wav").rename(nested / "english1.wav")
    path = load_archive(root).with_audio["path"].iloc[0]
    assert path.endswith("recordings/recordings/english1.wav")


def test_missing_column_is_named(tmp_path: Path) -> None:
    header = HEADER.replace("native_language", "language")
    root = write_archive(tmp_path / "a", [("english1", "english", "usa")], header=header)
    with pytest.raises(ArchiveError, match="missing required column.*native_language"):
        load_archive(root)


def test_missing_archive_and_missing_csv(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="nowhere.*does not exist"):
        load_archive(tmp_path / "nowhere")
    (tmp_path / "empty" / "recordings").mkdir(parents=True)
    with pytest.raises(ArchiveError, match="speakers_all.csv"):
        load_archive(tmp_path / "empty")


def test_no_warning_when_every_country_is_mapped(tmp_path: Path) -> None:
    root = write_archive(tmp_path / "a", [("english1", "english", "usa")])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_archive(root).unmapped_countries == []


def test_describe_counts_and_unreadable_files(tmp_path: Path) -> None:
    root = write_archive(
        tmp_path / "a",
        [
            ("english1", "english", "usa"),
            ("german1", "german", "germany"),
            ("#french1", "french", "france"),
            ("garbage1", "english", "uk"),
        ],
    )
    (root / "recordings" / "german1.wav").write_bytes(b"")
    (root / "recordings" / "garbage1.wav").write_bytes(b"RIFF\x00\x00garbage" * 3)
    summary = describe_archive(load_archive(root))
    assert (summary["rows"], summary["with_audio"], summary["without_audio"]) == (4, 3, 1)
    unreadable = {item["file"]: item["reason"] for item in summary["unreadable"]}
    assert unreadable["german1.wav"] == "empty file (0 bytes)"
    assert "cannot decode" in unreadable["garbage1.wav"] and "english1.wav" not in unreadable
    # Counts are over rows with audio: france has none.
    assert summary["by_country"] == {"usa": 1, "germany": 1, "uk": 1}
    assert summary["by_region"] == {
        "north american": 1,
        "western european non-romance": 1,
        "british isles": 1,
    }
    assert summary["regions"] == 3 and summary["region_table"]["name"] == "seed"
    assert sum(summary["by_age"].values()) == 3
    assert summary["by_sex"] == {"male": 2, "female": 1}


def test_overview_plots_are_png(tmp_path: Path) -> None:
    root = write_archive(
        tmp_path / "a", [("english1", "english", "usa"), ("g1", "german", "austria")]
    )
    written = plot_overview(load_archive(root), tmp_path / "plots")
    assert len(written) == 4
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_region_column_follows_the_chosen_table(tmp_path: Path) -> None:
    rows = [
        ("english1", "english", "usa"),
        ("spanish1", "spanish", "spain"),
        ("zulu1", "zulu", "south africa"),
    ]
    root = write_archive(tmp_path / "a", rows)
    seed = load_archive(root)
    assert seed.regions is region_table("seed")
    assert list(seed.speakers["region"]) == ["north american", "romance", "african anglophone"]
    geo = load_archive(root, regions="geo")
    assert geo.regions.name == "geo"
    assert list(geo.speakers["region"]) == [
        "north american",
        "southern european",
        "sub-saharan african",
    ]
    # Unmapped countries are relative to the table in use.
    mine = tmp_path / "mine.csv"
    mine.write_text("# two countries only\ncountry,region\nusa,anglo\nspain,iberian\n")
    with pytest.warns(UserWarning, match="in the 'mine' region table.*south africa"):
        own = load_archive(root, regions=mine)
    assert own.unmapped_countries == ["south africa"]
    assert list(own.speakers["region"]) == ["anglo", "iberian", UNCLASSIFIED]
    summary = describe_archive(own, check_audio=False)
    assert summary["region_table"]["name"] == "mine" and summary["regions"] == 2
    assert summary["region_table"]["digest"] == own.regions.digest


def test_bad_region_table_fails_first(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown region table 'gee'"):
        load_archive(tmp_path / "nowhere", regions="gee")  # before the archive is even looked at


def test_archive_error_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError) as caught:
        load_archive(tmp_path / "nowhere")
    assert isinstance(caught.value, ArchiveError) and isinstance(caught.value, ValueError)


# -- the real archive -------------------------------------------------------------------------------


@pytest.mark.shared
def test_real_archive_counts(shared_archive: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every country in the real CSV has a region
        archive = load_archive(shared_archive)
    assert archive.unmapped_countries == []
    # Only the rows with no country at all (none of which has audio) stay unclassified.
    unclassified = archive.speakers[archive.speakers["region"] == UNCLASSIFIED]
    assert unclassified["country"].isna().all() and unclassified["path"].isna().all()
    summary = describe_archive(archive, check_audio=False)
    assert (summary["rows"], summary["with_audio"], summary["without_audio"]) == (1901, 1079, 822)
    assert summary["regions"] == 17 and set(summary["by_region"]) == set(region_table().regions())
    assert summary["by_region"]["north american"] == 348
    assert summary["by_region"]["scandinavian"] == 6
    assert len(summary["by_country"]) == 111 and len(summary["by_native_language"]) == 43
