"""Corpus readers on small copies of each corpus's layout, written here with synthetic speech.

The metadata files are written in their real formats with their real quirks: Common Voice's
unquoted TSV with bare quotes in sentences, several ``|``-separated accents and empty fields;
VCTK's whitespace-aligned speaker-info.txt with multi-word regions, parenthesised comments and a
header; L2-ARCTIC's markdown speaker table.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from speechprint.core.registry import UnknownNameError
from speechprint.data.archive import ArchiveError, describe_archive
from speechprint.data.corpora import CORPORA, load_corpus
from speechprint.data.corpora.common import accent_table
from speechprint.data.regions import region_table

VOICES = ("en-us", "en", "en-gb-scotland", "en-029", "de", "fr")


def speech(path: Path, voice: str, seed: int, seconds: float = 1.0) -> Path:
    """A short utterance of ``voice`` with its own noise, so every file's content differs."""
    from speechprint.data.synth import synthesize

    wave, rate = synthesize("Please call Stella.", voice, seed=seed)
    x = wave[: int(seconds * rate)].astype(np.float32) / 32768.0
    x += 1e-3 * np.random.default_rng(seed).standard_normal(x.size).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = {".mp3": "MP3", ".flac": "FLAC", ".wav": "WAV"}[path.suffix]
    sf.write(path, np.clip(x, -1, 1), rate, format=fmt)
    return path


# Common Voice: speaker -> (accents as typed, gender, age, voice); several clips each.
CV_SPEAKERS = {
    "a1" * 8: ("United States English", "male_masculine", "twenties", "en-us"),
    "b2" * 8: ("England English|Scottish English", "female_feminine", "fourties", "en"),
    "c3" * 8: ("India and South Asia (India, Pakistan, Sri Lanka)", "", "", "en-029"),
    "d4" * 8: ("us", "female", "thirties", "en-us"),  # a pre-8.0 short code
    "e5" * 8: ("Klingon English", "male", "sixties", "de"),  # unknown: counted, listed
    "f6" * 8: ("United States English|England English", "", "teens", "fr"),  # ambiguous
    "g7" * 8: ("", "other", "", "en"),  # no accent given
}


def write_commonvoice(
    root: Path, clips_per_speaker: int = 3, speakers: dict | None = None, first_seed: int = 0
) -> Path:
    speakers = speakers or CV_SPEAKERS
    header = "client_id\tpath\tsentence_id\tsentence\tsentence_domain\tup_votes\tdown_votes\t"
    header += "age\tgender\taccents\tvariant\tlocale\tsegment\n"
    lines, seed = [header], first_seed
    for client, (accents, gender, age, voice) in speakers.items():
        for _ in range(clips_per_speaker):
            seed += 1
            name = f"common_voice_en_{seed:08d}.mp3"
            speech(root / "clips" / name, voice, seed)
            sentence = 'He said "hello" to the 4" pipe'  # bare quotes: the TSV is unquoted
            lines.append(
                f"{client}\t{name}\t{seed}\t{sentence}\t\t2\t0\t{age}\t{gender}\t"
                f"{accents}\t\ten\t\n"
            )
    lines.append(f"{'z9' * 8}\tcommon_voice_en_99999999.mp3\t1\tgone\t\t2\t0\t\t\tus\t\ten\t\n")
    (root / "validated.tsv").write_text("".join(lines), encoding="utf-8")
    return root


def test_commonvoice_reader(tmp_path: Path) -> None:
    root = write_commonvoice(tmp_path / "cv")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every country the accents name has a seed region
        archive = load_corpus(root, "commonvoice")
    clips = archive.with_audio
    assert archive.corpus == "commonvoice" and len(clips) == 21 and archive.rows_without_audio == 1
    by_speaker = clips.groupby("speakerid").first()
    assert by_speaker.loc[
        "a1" * 8, ["region", "country", "native_language", "sex", "age"]
    ].tolist() == ["north american", "usa", "english", "male", 25.0]
    # Two accents that agree on region and country keep them; ones that disagree keep neither.
    assert by_speaker.loc["b2" * 8, ["region", "country"]].tolist() == ["british isles", "uk"]
    assert by_speaker.loc["f6" * 8, "region"] == "unclassified"
    # A region named by the accent without one country (South Asia) is kept, country unknown.
    assert by_speaker.loc["c3" * 8, "region"] == "south asian"
    assert np.isnan(by_speaker.loc["c3" * 8, "age"]) and by_speaker.loc["g7" * 8, "sex"] != "other"
    assert by_speaker.loc["d4" * 8, "country"] == "usa"
    assert archive.unmapped_accents == {"klingon english": 1}
    summary = describe_archive(archive)
    assert summary["speakers"] == 7 and summary["with_audio"] == 21 and summary["unreadable"] == []
    assert summary["by_region"]["north american"] == 2  # speakers, not clips
    assert summary["notes"]["speakers_with_several_accents"] == 2
    json.dumps(summary)
    assert set(clips["text"]) == {'He said "hello" to the 4" pipe'}  # the clip's sentence


def test_commonvoice_errors_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "cv" / "clips").mkdir(parents=True)
    with pytest.raises(ArchiveError, match="validated.tsv"):
        load_corpus(tmp_path / "cv", "commonvoice")
    (tmp_path / "cv" / "validated.tsv").write_text("client\tfile\nx\ty.mp3\n")
    with pytest.raises(
        ArchiveError, match=r"validated.tsv: missing required column\(s\) client_id"
    ):
        load_corpus(tmp_path / "cv", "commonvoice")
    with pytest.raises(ArchiveError, match="clips/"):
        load_corpus(tmp_path, "commonvoice")
    with pytest.raises(UnknownNameError, match="commonvoice, l2arctic, saa, speechocean762, vctk"):
        load_corpus(tmp_path, "timit")


def test_commonvoice_accent_table_agrees_with_the_seed_regions() -> None:
    """Where an accent names a country, its region is the seed table's region of that country."""
    seed = region_table("seed")
    table = accent_table("commonvoice")
    assert len(table) >= 30 and set(seed.regions()) >= {r["region"] for r in table.values()}
    for accent, row in table.items():
        if row["country"]:
            assert seed.region_of(row["country"]) == row["region"], accent


VCTK_INFO = """ID  AGE  GENDER  ACCENTS  REGION COMMENTS 
p225  23  F    English    Southern  England
p226  22  M    English    Surrey
p234  22  F    Scottish  West Dumfries
p245  25  M    Irish  Dublin
p280  25  F    France  (mic2 files unavailable)
p315  23  M    American    Connecticut  (no text)
p362  29  F    American  
s5    22  F    
"""


def write_vctk(root: Path, utterances: int = 2) -> Path:
    (root).mkdir(parents=True, exist_ok=True)
    (root / "speaker-info.txt").write_text(VCTK_INFO, encoding="utf-8")
    seed = 100
    for speaker in ("p225", "p226", "p234", "p245", "p280", "p315", "p999"):
        for i in range(1, utterances + 1):
            for mic in ("mic1", "mic2"):
                seed += 1
                speech(
                    root / "wav48_silence_trimmed" / speaker / f"{speaker}_{i:03d}_{mic}.flac",
                    "en" if speaker != "p315" else "en-us",
                    seed,
                )
    # A transcript for p225's clips only: VCTK copies without txt/ are common.
    for i in range(1, utterances + 1):
        text = root / "txt" / "p225" / f"p225_{i:03d}.txt"
        text.parent.mkdir(parents=True, exist_ok=True)
        text.write_text("Please call Stella.\n", encoding="utf-8")
    return root


def test_vctk_reader(tmp_path: Path) -> None:
    archive = load_corpus(write_vctk(tmp_path / "vctk"), "vctk")
    clips = archive.with_audio
    assert len(clips) == 14 and not clips["filename"].str.endswith("mic2").any()  # mic1 only
    first = clips.groupby("speakerid").first()
    assert first.loc[
        "p225", ["accent", "region", "country", "sex", "age", "birthplace"]
    ].tolist() == ["english", "british isles", "uk", "female", 23.0, "southern england"]
    assert first.loc["p315", ["region", "birthplace"]].tolist() == ["north american", "connecticut"]
    assert (
        first.loc["p245", "country"] == "ireland" and first.loc["p280", "region"] == "unclassified"
    )
    assert archive.unmapped_accents == {"france": 1}
    assert archive.notes["speakers_without_info"] == ["p999"]  # audio without labels: kept
    assert archive.notes["speakers_without_audio"] == ["p362"]
    assert archive.notes["malformed_info_lines"] == ["s5    22  F"]
    assert describe_archive(archive, check_audio=False)["speakers"] == 7
    texts = clips.groupby("speakerid")["text"].first()
    assert texts["p225"] == "Please call Stella." and texts.drop("p225").isna().all()


def test_vctk_errors(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="speaker-info.txt not found"):
        load_corpus(tmp_path, "vctk")
    (tmp_path / "speaker-info.txt").write_text(VCTK_INFO)
    with pytest.raises(ArchiveError, match="no wav48_silence_trimmed/"):
        load_corpus(tmp_path, "vctk")


L2_README = """# L2-ARCTIC

| Speaker | Gender | Native Language | # Wav Files | # Annotations |
|:-------:|:------:|:---------------:|:-----------:|:-------------:|
| ABA | M | Arabic | 1129 | 150 |
| **BWC** | M | Mandarin | 1130 | 150 |
| TNI | F | Hindi | 1131 | 150 |
| HQTV |  | Vietnamese | 1132 | 150 |
| NJS | F | Spanish | 1131 | 150 |

Other text after the table.
"""


def write_l2arctic(root: Path, utterances: int = 2, readme: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if readme:
        (root / "README.md").write_text(L2_README, encoding="utf-8")
    seed = 500
    for speaker, voice in (
        ("ABA", "de"),
        ("BWC", "en"),
        ("TNI", "en-029"),
        ("HQTV", "fr"),
        ("NJS", "en-us"),
        ("XYZ", "en"),
    ):
        for i in range(1, utterances + 1):
            seed += 1
            speech(root / speaker / "wav" / f"arctic_a{i:04d}.wav", voice, seed)
        (root / speaker / "transcript").mkdir()
    (root / "BWC" / "transcript" / "arctic_a0001.txt").write_text("Author of the danger trail.")
    return root


def test_l2arctic_reader(tmp_path: Path) -> None:
    archive = load_corpus(write_l2arctic(tmp_path / "l2"), "l2arctic")
    first = archive.with_audio.groupby("speakerid").first()
    assert len(archive.with_audio) == 12
    assert first.loc["BWC", ["native_language", "country", "region", "sex"]].tolist() == [
        "mandarin",
        "china",
        "east asian",
        "male",
    ]
    assert first.loc["ABA", ["region", "native_language"]].tolist() == [
        "middle eastern and african arab",
        "arabic",
    ]
    assert first.loc["NJS", "region"] == "unclassified" and first.loc["NJS", "country"] != "spain"
    assert not isinstance(first.loc["HQTV", "sex"], str)  # the empty Gender cell
    assert archive.notes["speakers_not_in_table"] == ["XYZ"]
    assert archive.notes["speaker_table"].endswith("README.md")
    texts = archive.with_audio.set_index(["speakerid", "filename"])["text"]
    assert texts["BWC", "arctic_a0001"] == "Author of the danger trail."
    assert texts.drop(("BWC", "arctic_a0001")).isna().all()  # no transcript file: no text


def test_l2arctic_packaged_table(tmp_path: Path) -> None:
    archive = load_corpus(write_l2arctic(tmp_path / "l2", readme=False), "l2arctic")
    first = archive.with_audio.groupby("speakerid").first()
    assert first.loc["HQTV", ["native_language", "sex"]].tolist() == ["vietnamese", "male"]
    assert archive.notes["speaker_table"] == "packaged l2arctic-speakers.csv"
    with pytest.raises(ArchiveError, match="no speaker folders"):
        load_corpus(tmp_path, "l2arctic")


def test_saa_is_the_default_reader(shared_archive: Path) -> None:
    from speechprint.data.archive import load_archive

    assert "saa" in CORPORA.names()
    via_registry = load_corpus(shared_archive)
    direct = load_archive(shared_archive)
    assert via_registry.corpus == "saa" and via_registry.speakers.equals(direct.speakers)
    assert describe_archive(via_registry, check_audio=False)["speakers"] == 1079
    # Every recording reads the paragraph: its transcript is the passage.
    passage = " ".join((shared_archive / "reading-passage.txt").read_text().split())
    assert set(direct.with_audio["text"]) == {passage}


def test_describe_corpus_cli(tmp_path: Path) -> None:
    from speechprint.cli import _register_subcommands, app

    _register_subcommands()
    root = write_l2arctic(tmp_path / "l2", utterances=1)
    result = CliRunner().invoke(
        app, ["data", "describe", "--corpus", "l2arctic", "--archive", str(root), "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["corpus"] == "l2arctic" and summary["speakers"] == 6
    bad = CliRunner().invoke(app, ["data", "describe", "--corpus", "nope", "--archive", str(root)])
    assert bad.exit_code == 2 and "unknown corpus 'nope'" in bad.output
