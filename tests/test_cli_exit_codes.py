"""One exit-code rule for every command (docs/USAGE.md, "Exit codes"), met as a user meets it: real
``speechprint`` processes. 0 done, 1 a bug (traceback), 2 a user error (one ``error:`` line; with
--debug its traceback too), 130 interrupted."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cli_errors import speechprint


def user_error(result, *fragments: str) -> str:  # noqa: ANN001 - CompletedProcess
    """The one ``error:`` line of a user error that exited 2, checked."""
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def test_debug_shows_the_traceback_and_keeps_the_user_error_code(tmp_path: Path) -> None:
    result = speechprint("--debug", "study", "show", "absent", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" in result.stderr and "StorageError" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("error: no study named 'absent'")
    assert not (tmp_path / "studies").exists()  # looking for a study creates none


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "name: x\n"])
def test_an_empty_or_incomplete_study_file_is_one_line(tmp_path: Path, text: str) -> None:
    (tmp_path / "s.yaml").write_text(text)
    result = speechprint("study", "run", "s.yaml", cwd=tmp_path)
    user_error(result, "s.yaml: required key(s) missing: ", "data", "extractors", "models")


def test_predict_checks_its_inputs_before_loading_any_model(tmp_path: Path) -> None:
    (tmp_path / "empty-folder").mkdir()
    (tmp_path / "clip.wav").write_bytes(b"RIFF")
    cases = [
        (["missing.wav", "clip.wav"], "file not found: missing.wav"),
        (["empty-folder"], "empty-folder: a folder with no audio files"),
        (["clip.wav", "--top-k", "0"], "--top-k must be at least 1, got 0"),
        (["clip.wav", "--top-k", "-2"], "--top-k must be at least 1, got -2"),
    ]
    for args, message in cases:
        user_error(speechprint("predict", *args, cwd=tmp_path), message)
    # No model was looked for: MLflow's store was never opened.
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize("value", ["0", "-1"])
def test_a_budget_below_one_is_refused_before_any_study_or_run(
    tiny_archive: Path, tmp_path: Path, value: str
) -> None:
    study = tmp_path / "s.yaml"
    study.write_text(
        f"name: s\ndata: {{archive: {tiny_archive}, min_count: 3}}\n"
        "extractors: [mfcc_mean]\nmodels: [logreg]\n"
    )
    result = speechprint("study", "run", "s.yaml", "--n-trials", value, cwd=tmp_path)
    user_error(result, f"--n-trials must be at least 1, got {value}")
    assert not (tmp_path / "studies").exists() and not (tmp_path / "mlflow.db").exists()


def test_usage_errors_and_version(tmp_path: Path) -> None:
    assert speechprint("study", "run", "--no-such-option", cwd=tmp_path).returncode == 2
    version = speechprint("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("speechprint ")


def test_help_lists_flags_without_a_type(tmp_path: Path) -> None:
    result = speechprint("study", "run", "--help", cwd=tmp_path)
    assert result.returncode == 0 and "--new-version" in result.stdout
    assert "<bool>" not in result.stdout


@pytest.mark.parametrize("cv", ["1x2", "0", "5x0", "-3x1"])
def test_a_cross_validation_below_range_is_refused_before_any_run(tmp_path: Path, cv: str) -> None:
    (tmp_path / "e.yaml").write_text(
        "data: {archive: nowhere}\nextractor: mfcc_mean\nmodel: logreg\n"
    )
    result = speechprint("run", "e.yaml", "--cv", cv, cwd=tmp_path)
    user_error(result, f"--cv needs at least 2 folds and 1 repeat, got '{cv}'")
    assert not (tmp_path / "mlflow.db").exists()
