"""`speechprint pronounce`: a learner's page from one real archive recording (the passage) and
from eSpeak speech of another text (``--text``), without any accent model."""

from __future__ import annotations

import re
from pathlib import Path

import soundfile
from typer.testing import CliRunner

from speechprint.cli import _register_subcommands, app

_register_subcommands()


def test_a_passage_recording_gets_a_page_with_its_words_sounds_and_clips(
    shared_archive: Path, tmp_path: Path, require_pretrained
) -> None:
    require_pretrained("hama")
    from speechprint.apps.pronounce import pronounce

    result = pronounce(shared_archive / "recordings" / "spanish1.mp3", tmp_path / "p.html")
    assert len(result.words) == 69 and result.aligned_share > 0.8
    page = result.page.read_text(encoding="utf-8")
    marked = [w for w in result.words if w.flagged]
    assert marked, "a Spanish speaker's reading differs from native readers somewhere"
    clips = page.count("<audio ")
    assert clips == 1 + min(10, len(marked))  # the recording, then each word listed
    assert page.count("data:image/png;base64,") == 1
    assert "no model given" in page
    assert "http" not in re.sub(r'src="data:[^"]*"', "", page)  # nothing fetched


def test_any_text_through_the_command_line(tmp_path: Path, require_pretrained) -> None:
    require_pretrained("hama", "espeakng_loader")
    from espeak_timing import speak

    text = "The kind old bird found a cold seed and good bread near the red barn."
    wav = tmp_path / "said.wav"
    soundfile.write(wav, speak(text).audio, 16000)
    out = tmp_path / "learner.html"
    result = CliRunner().invoke(app, ["pronounce", str(wav), "--text", text, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "page:" in result.output and out.exists()
    assert out.read_text(encoding="utf-8").count("<audio ") >= 1


def test_a_missing_recording_is_a_one_line_user_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["pronounce", str(tmp_path / "nothing.mp3")])
    assert result.exit_code == 2
    assert "nothing.mp3" in result.output and "Traceback" not in result.output
