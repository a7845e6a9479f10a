"""The embedded demo corpus (eSpeak NG through espeakng-loader), on tiny settings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from speechprint.core.errors import SpeechPrintError
from speechprint.data.regions import region_of
from speechprint.data.synth import ACCENT_CLASSES, paragraph, synthesize, synthesize_corpus

REAL_COLUMNS = [
    "age",
    "age_onset",
    "birthplace",
    "filename",
    "native_language",
    "sex",
    "speakerid",
    "country",
    "file_missing?",
    "Unnamed: 9",
]
PER_CLASS = 2
SECONDS = 1.5


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return synthesize_corpus(
        tmp_path_factory.mktemp("synth") / "demo",
        speakers_per_class=PER_CLASS,
        seconds=SECONDS,
        seed=7,
        progress=False,
    )


def _audio_path(root, filename):
    matches = sorted((root / "recordings").glob(f"{filename}.*"))
    assert len(matches) == 1, f"expected one recording for {filename}, found {matches}"
    return matches[0]


def test_csv_has_the_real_archive_columns(corpus):
    df = pd.read_csv(corpus / "speakers_all.csv")
    assert df.columns.tolist() == REAL_COLUMNS
    assert len(df) == len(ACCENT_CLASSES) * PER_CLASS + 2
    assert df["speakerid"].is_unique and df["filename"].is_unique
    for col in ("birthplace", "filename", "native_language", "sex", "country"):
        assert (df[col] == df[col].str.lower()).all(), col
    assert set(df["sex"]) == {"female", "male"}
    assert df["filename"].str.fullmatch(r"[a-z]+\d+").all()
    assert (df["filename"].str.rstrip("0123456789") == df["native_language"]).all()


def test_real_header_line_is_reproduced(corpus):
    real_header = "age,age_onset,birthplace,filename,native_language,sex,speakerid,country,"
    header = (corpus / "speakers_all.csv").read_text().splitlines()[0]
    assert header == real_header + "file_missing?,"


def test_one_readable_recording_per_present_row(corpus):
    df = pd.read_csv(corpus / "speakers_all.csv")
    present = df[~df["file_missing?"]]
    missing = df[df["file_missing?"]]
    assert len(present) == len(ACCENT_CLASSES) * PER_CLASS
    assert 1 <= len(missing) <= 2
    for filename in missing["filename"]:
        assert not list((corpus / "recordings").glob(f"{filename}.*"))
    for filename in present["filename"]:
        wave, sr = sf.read(_audio_path(corpus, filename), dtype="float32")
        assert sr == 16_000 and wave.ndim == 1
        assert abs(wave.size / sr - SECONDS) < 0.1
        assert np.isfinite(wave).all() and np.abs(wave).max() > 0.05
    assert len(list((corpus / "recordings").iterdir())) == len(present)


def test_several_classes_with_distinct_countries(corpus):
    df = pd.read_csv(corpus / "speakers_all.csv")
    assert df["country"].nunique() == len(ACCENT_CLASSES) >= 6
    assert df["native_language"].nunique() >= 5
    assert (df[~df["file_missing?"]].groupby("country").size() == PER_CLASS).all()


def test_classes_land_in_distinct_seed_regions():
    # The demo's region target needs one seed-table region per class, none unclassified.
    got = {cls.country: region_of(cls.country) for cls in ACCENT_CLASSES}
    assert got == {
        "usa": "north american",
        "uk": "british isles",
        "jamaica": "caribbean",
        "germany": "western european non-romance",
        "spain": "romance",
        "poland": "eastern european",
        "brazil": "latin american",
        "indonesia": "southeast asian",
    }


def test_deterministic_for_a_seed(corpus, tmp_path):
    again = synthesize_corpus(
        tmp_path / "again", speakers_per_class=PER_CLASS, seconds=SECONDS, seed=7, progress=False
    )
    assert (again / "speakers_all.csv").read_bytes() == (corpus / "speakers_all.csv").read_bytes()
    first = pd.read_csv(corpus / "speakers_all.csv")["filename"].iloc[0]
    a, _ = sf.read(_audio_path(corpus, first))
    b, _ = sf.read(_audio_path(again, first))
    np.testing.assert_array_equal(a, b)


def test_other_seed_gives_other_speakers(corpus, tmp_path):
    other = synthesize_corpus(
        tmp_path / "other", speakers_per_class=PER_CLASS, seconds=SECONDS, seed=8, progress=False
    )
    assert (other / "speakers_all.csv").read_bytes() != (corpus / "speakers_all.csv").read_bytes()


def test_speakers_differ_in_audio(corpus):
    df = pd.read_csv(corpus / "speakers_all.csv")
    present = df[~df["file_missing?"]]
    waves = [sf.read(_audio_path(corpus, f), dtype="float32")[0] for f in present["filename"]]
    # Within a class as well as across classes: no two recordings are the same.
    for i in range(len(waves)):
        for j in range(i + 1, len(waves)):
            n = min(waves[i].size, waves[j].size)
            assert not np.allclose(waves[i][:n], waves[j][:n], atol=1e-3), (i, j)
    spectra = [np.abs(np.fft.rfft(w[:16_000]))[:4000] for w in waves]
    same_class = np.corrcoef(spectra[0], spectra[1])[0, 1]
    assert same_class < 0.999


def test_synthesize_returns_speech_and_rejects_unknown_voices():
    wave, sr = synthesize("Please call Stella.", "en-us")
    assert sr == 22_050 and wave.dtype == np.int16
    assert 0.5 < wave.size / sr < 3.0 and np.abs(wave).max() > 1000
    slow, _ = synthesize("Please call Stella.", "en-us", rate=100)
    assert slow.size > wave.size
    # A pure function of its arguments, whatever was spoken before.
    again, _ = synthesize("Please call Stella.", "en-us")
    np.testing.assert_array_equal(again, wave)
    with pytest.raises(RuntimeError, match="no voice"):
        synthesize("hello", "no-such-voice")


def test_paragraph_is_the_archive_passage():
    text = paragraph()
    assert text.startswith("Please call Stella.") and text.endswith("at the train station.")
    assert len(text.split()) == 69


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="speakers_per_class"):
        synthesize_corpus(tmp_path, speakers_per_class=0, progress=False)
    with pytest.raises(ValueError, match="seconds"):
        synthesize_corpus(tmp_path, seconds=0, progress=False)


def test_shared_instance_fallback_still_speaks(monkeypatch):
    # Where a private copy of the library cannot be loaded (noexec temp folder), the package's
    # own instance is used instead.
    from speechprint.data import synth

    monkeypatch.setattr(synth.espeak, "_private_copy", lambda library: None)
    wave, sr = synth.synthesize("Please call Stella.", "de+f2")
    assert sr == 22_050 and wave.size > sr // 2


def test_missing_espeak_gives_a_clear_error(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "espeakng_loader", None)  # import now fails
    with pytest.raises(SpeechPrintError, match="espeakng-loader"):
        synthesize_corpus(tmp_path / "x", speakers_per_class=1, seconds=1.0, progress=False)
    assert not (tmp_path / "x").exists()
