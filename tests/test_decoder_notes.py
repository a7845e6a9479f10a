"""The MP3 decoder's notes about damaged frames stay off the terminal (fd 2); our own report of
the file, and anything else written meanwhile, does not."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import soundfile as sf

from speechprint.data.archive import check_readable
from speechprint.data.audio import AudioError, load_audio
from speechprint.data.decoder_notes import decoder_notes_dropped


def damaged(archive: Path, tmp_path: Path) -> list[Path]:
    """A truncated MP3, one cut in half, one with junk bytes amid its frames."""
    data = sorted((archive / "recordings").glob("*.mp3"))[0].read_bytes()
    damage = {
        "truncated": data[:300],
        "halved": data[: len(data) // 2],
        "junk": data[:4000] + bytes(range(256)) * 4 + data[4000:],
    }
    for name, content in damage.items():
        (tmp_path / f"{name}.mp3").write_bytes(content)
    return [tmp_path / f"{name}.mp3" for name in damage]


def raw_decoder_output(path: Path, capfd: pytest.CaptureFixture[str]) -> str:
    try:
        sf.read(str(path))
    except Exception:  # noqa: BLE001 - only its output matters here
        pass
    return capfd.readouterr().err


def test_decoding_a_damaged_mp3_prints_none_of_the_decoders_notes(
    tiny_archive: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    files = damaged(tiny_archive, tmp_path)
    # The files do make libmpg123 talk when read directly: the check below means something.
    assert any("Illegal Audio-MPEG-Header" in raw_decoder_output(f, capfd) for f in files)
    for path in files:
        try:
            load_audio(path, 16000)
        except AudioError:
            pass
        check_readable(path)
    assert capfd.readouterr().err == ""


def test_other_output_written_while_decoding_comes_back(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with decoder_notes_dropped():
        os.write(2, b"Note: Illegal Audio-MPEG-Header 0x00000000 at offset 300.\n")
        with decoder_notes_dropped():  # nested (another thread): restored once, by the last
            os.write(2, b"WARNING: a log line from elsewhere\n")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "WARNING: a log line from elsewhere\nafter\n"
