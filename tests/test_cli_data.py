"""`speechprint data describe | synth` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_archive import write_archive
from typer.testing import CliRunner

from speechprint.cli import _register_subcommands, app

_register_subcommands()
KEYS = (
    "rows",
    "with_audio",
    "without_audio",
    "unreadable",
    "region_table",
    "regions",
    "by_region",
    "by_native_language",
    "by_country",
    "by_sex",
    "by_age",
)
# The seed notebook's 17 regions on saa8k (its README: north american 348 ... scandinavian 6).
SAA8K_SEED_REGIONS = {
    "north american": 348,
    "latin american": 148,
    "east asian": 110,
    "middle eastern and african arab": 90,
    "eastern european": 82,
    "british isles": 63,
    "romance": 46,
    "western european non-romance": 46,
    "oceanian": 35,
    "african other": 19,
    "south asian": 19,
    "african francophone": 18,
    "caribbean": 16,
    "african anglophone": 14,
    "southeast asian": 10,
    "central asian": 9,
    "scandinavian": 6,
}


def invoke(*args: str) -> object:
    return CliRunner().invoke(app, ["data", *args])


def small_archive(tmp_path: Path) -> Path:
    return write_archive(
        tmp_path / "a",
        [
            ("english1", "english", "usa"),
            ("german1", "german", "germany"),
            ("#french1", "french", "france"),
            ("zulu1", "zulu", "atlantis"),
        ],
    )


def test_describe_json_is_one_object(tmp_path: Path) -> None:
    root = small_archive(tmp_path)
    (root / "recordings" / "german1.wav").write_bytes(b"")
    result = invoke("describe", "--archive", str(root), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # the whole of stdout: warnings go to stderr
    assert all(key in summary for key in KEYS)
    assert (summary["rows"], summary["with_audio"], summary["without_audio"]) == (4, 3, 1)
    assert summary["unreadable"] == [{"file": "german1.wav", "reason": "empty file (0 bytes)"}]
    assert "atlantis" in result.stderr
    assert summary["region_table"]["name"] == "seed"
    assert summary["by_region"] == {
        "north american": 1,
        "western european non-romance": 1,
        "unclassified": 1,
    }


def test_describe_with_another_region_table(tmp_path: Path) -> None:
    root = small_archive(tmp_path)
    result = invoke("describe", "--archive", str(root), "--regions", "geo", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["region_table"]["name"] == "geo"
    assert summary["by_region"]["western european"] == 1
    mine = tmp_path / "mine.csv"
    mine.write_text("country,region\nusa,anglo\ngermany,continental\natlantis,myth\n")
    result = invoke("describe", "--archive", str(root), "--regions", str(mine))
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "3 regions (region table mine," in text and "continental" in text
    assert "atlantis" not in result.stderr  # mapped by this table


@pytest.mark.parametrize(
    ("regions", "message"),
    [("sead", "unknown region table 'sead'; valid: seed, geo"), ("nope.csv", "nope.csv")],
)
def test_describe_bad_region_table_exits_2(tmp_path: Path, regions: str, message: str) -> None:
    result = invoke("describe", "--archive", str(small_archive(tmp_path)), "--regions", regions)
    assert result.exit_code == 2 and message in result.stderr
    assert "Traceback" not in result.output


def test_describe_human_output_and_plots(tmp_path: Path) -> None:
    root = small_archive(tmp_path)
    result = invoke("describe", "--archive", str(root), "--out", str(tmp_path / "plots"))
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())  # rich wraps long lines
    assert "4 rows, 3 with audio, 1 without audio" in text
    assert "over rows with audio" in text and "north american" in text
    assert len(list((tmp_path / "plots").glob("*.png"))) == 4


@pytest.mark.parametrize("as_json", [False, True])
def test_describe_missing_archive_exits_2_without_traceback(tmp_path: Path, as_json: bool) -> None:
    args = ["describe", "--archive", str(tmp_path / "nowhere")] + (["--json"] if as_json else [])
    result = invoke(*args)
    assert result.exit_code == 2
    assert "does not exist" in result.stderr and "Traceback" not in result.output
    assert result.stdout == ""


def test_describe_missing_column_exits_2(tmp_path: Path) -> None:
    root = write_archive(
        tmp_path / "a",
        [("english1", "english", "usa")],
        header="age,filename,native_language,speakerid,country",
    )
    result = invoke("describe", "--archive", str(root))
    assert result.exit_code == 2 and "sex" in result.stderr


def test_synth_calls_the_library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from speechprint.data import synth

    calls = []

    def fake(out: Path, **kwargs: object) -> Path:
        calls.append((Path(out), kwargs))
        return Path(out)

    monkeypatch.setattr(synth, "synthesize_corpus", fake)
    out = tmp_path / "demo"
    args = ("--out", str(out), "--speakers-per-class", "3", "--seconds", "2.5", "--seed", "7")
    result = invoke("synth", *args)
    assert result.exit_code == 0, result.output
    assert calls == [(out, {"speakers_per_class": 3, "seconds": 2.5, "seed": 7})]


@pytest.mark.shared
def test_describe_real_archive(shared_archive: Path) -> None:
    result = invoke("describe", "--archive", str(shared_archive), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["rows"], summary["with_audio"], summary["without_audio"]) == (1901, 1079, 822)
    assert summary["unreadable"] == [] and summary["unmapped_countries"] == []
    assert summary["region_table"]["name"] == "seed" and summary["regions"] == 17
    assert summary["by_region"] == SAA8K_SEED_REGIONS
    assert sum(summary["by_region"].values()) == 1079
