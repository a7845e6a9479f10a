"""What the terminal shows: tables as wide as the terminal (COLUMNS), commands never wrapped, every
column under its own header, every extractor setting listed, a cut table said to be cut."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console
from test_cli_errors import speechprint

from speechprint.cli.study import comparison_table
from speechprint.release.compare import PAIR_TABLE, TEST_TABLE, headers


@pytest.mark.parametrize("table", [PAIR_TABLE, TEST_TABLE])
def test_runs_compare_puts_every_column_under_its_own_header(table: dict[str, str]) -> None:
    frame = pd.DataFrame([{key: f"v-{key}" for key in table}], columns=list(table))
    rendered = comparison_table(frame, "t")
    assert [column.header for column in rendered.columns] == list(table.values())
    assert headers(frame) == list(table.values())
    for column, key in zip(rendered.columns, table, strict=True):
        assert list(column.cells) == [f"v-{key}"]


def test_tables_follow_the_terminal_width(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "72")
    result = speechprint("features", "list", cwd=tmp_path)
    assert result.returncode == 0
    assert max(len(line) for line in result.stdout.splitlines()) <= 72
    frame = pd.DataFrame([{key: "0.1234" for key in TEST_TABLE}], columns=list(TEST_TABLE))
    console = Console(width=80, record=True, file=open(tmp_path / "out", "w"))  # noqa: SIM115
    console.print(comparison_table(frame, "t"))
    assert max(len(line) for line in console.export_text().splitlines()) <= 80


def test_features_list_shows_every_setting_with_its_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    result = speechprint("features", "list", cwd=tmp_path)
    row = next(line for line in result.stdout.splitlines() if "whisper_encoder" in line)
    for setting in ("model=tiny.en", "layer=final", "layers=", "threads=0"):
        assert setting in row


def test_the_ui_commands_are_never_wrapped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    result = speechprint("ui", "--study", "demo", cwd=tmp_path)
    assert result.returncode == 0
    mlflow_line = next(line for line in result.stdout.splitlines() if "mlflow ui" in line)
    assert "--default-artifact-root" in mlflow_line and len(mlflow_line) > 40
    assert not (tmp_path / "studies").exists()  # naming a study to look at creates none


def test_data_describe_says_when_a_table_is_cut(
    tiny_archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    cut = speechprint(
        "data", "describe", "--archive", str(tiny_archive), "--top", "1", cwd=tmp_path
    )
    assert cut.returncode == 0, cut.stderr
    assert "(the 1 largest of " in cut.stdout and "--top N shows more" in cut.stdout
    whole = speechprint("data", "describe", "--archive", str(tiny_archive), cwd=tmp_path)
    assert "largest of" not in whole.stdout


def test_a_findings_summary_prints_its_brackets(capsys: pytest.CaptureFixture[str]) -> None:
    """``/z/ as [s]``: rich read ``[s]`` as a style tag and printed ``/z/ as :``."""
    from types import SimpleNamespace

    from speechprint.cli.findings import show_section

    section = SimpleNamespace(
        title="Which sounds betray each accent", seconds=1.0, summary="spanish: /z/ as [s]: 36%"
    )
    show_section(section)
    assert "/z/ as [s]: 36%" in capsys.readouterr().out
