"""`speechprint findings` end to end: a tiny study's model promoted in a real MLflow store, then every
section computed from out-of-fold predictions, written to one page and logged to the model's run."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from typer.testing import CliRunner

from speechprint.cli import _register_subcommands, app
from speechprint.release.promote import promote
from speechprint.study.runner import run_study
from speechprint.study.spec import StudySpec

_register_subcommands()
pytestmark = pytest.mark.slow  # trains fold models, aligns and occludes every recording

SECTIONS = ["words", "sounds", "onset", "similarity", "fairness", "calibration"]


def tiny_spec(archive: Path, name: str = "tiny", n_trials: int = 1) -> StudySpec:
    return StudySpec.from_dict(
        {
            "name": name,
            "data": {"archive": str(archive), "target": "region", "min_count": 3, "seed": 0},
            "extractors": ["mfcc_deltas"],
            "models": ["logreg"],
            "budget": {"n_trials": n_trials},
            "train": {"max_frames": 100, "epochs": 3},
            "search_training": False,
            "pruner": {"name": "none"},
        }
    )


@pytest.fixture()
def findings(
    tiny_archive: Path, tracking: str, cache_dir: Path, tmp_path: Path, require_pretrained
) -> dict:
    require_pretrained("hama")
    from speechprint.findings.run import run_findings

    run_study(tiny_spec(tiny_archive), cache_dir=str(cache_dir))
    decision = promote("tiny")
    result = run_findings(tmp_path / "findings", folds=3, calibrate=True, jobs=1, progress=False)
    return {
        "result": result,
        "decision": decision,
        "tracking": tracking,
        "archive": tiny_archive,
        "out": tmp_path / "findings",
    }


def test_findings_end_to_end(findings: dict, tiny_archive: Path, tmp_path: Path) -> None:
    """One study, one promotion, one findings run (about 15 s), then every check on it."""
    check_sections(findings)
    check_artifacts(findings)
    check_out_of_fold(findings, tiny_archive)
    check_cli_reuses_the_cache(findings, tmp_path)


def check_sections(findings: dict) -> None:
    result, out = findings["result"], findings["out"]
    assert [s.key for s in result.sections] == SECTIONS
    for section in result.sections:
        assert section.images and all(
            p.exists() and p.stat().st_size > 1000 for p in section.images
        )
        assert section.data and all(p.exists() for p in section.data), section.key
        assert len(section.summary) > 80 and section.seconds >= 0
    words = pd.read_csv(out / "words.csv")
    assert set(words["word"].str.split(" ").str[1]) >= {"please", "call", "stella"}
    status = pd.read_csv(out / "alignment_status.csv").drop(columns="path")
    assert (status == "aligned").to_numpy().any() and (status == "not_reached").to_numpy().any()
    calibration = json.loads((out / "calibration.json").read_text())
    assert calibration["temperature"] > 0 and 0 <= calibration["before"]["ece"] <= 1


def check_artifacts(findings: dict) -> None:
    client = mlflow.MlflowClient(findings["tracking"])
    run_id = findings["decision"].run_id
    assert findings["result"].run_id == run_id
    logged = {Path(a.path).name for a in client.list_artifacts(run_id, "findings")}
    assert {"findings.html", "words_heatmap.png", "calibration.json", "fairness.csv"} <= logged
    temperature = float(client.get_run(run_id).data.tags["temperature"])
    # predict returns calibrated probabilities when asked for them, and only then
    recordings = sorted(p for p in (findings["archive"] / "recordings").iterdir())[:3]
    uri = "models:/speechprint-accent@champion"
    plain = mlflow.pyfunc.load_model(uri).predict([str(p) for p in recordings])
    calibrated = mlflow.pyfunc.load_model(uri, model_config={"temperature": temperature})
    soft = calibrated.predict([str(p) for p in recordings])
    for before, after in zip(plain["top_probabilities"], soft["top_probabilities"]):
        assert after[0] != pytest.approx(before[0]) and (after[0] < before[0]) == (temperature > 1)


def check_out_of_fold(findings: dict, tiny_archive: Path) -> None:
    from speechprint.data.archive import load_archive
    from speechprint.data.dataset import make_dataset

    dataset = make_dataset(load_archive(tiny_archive), min_count=3, seed=0)
    test_paths = set(dataset.split("test")["path"])
    speakers = pd.read_csv(findings["out"] / "words_speakers.csv")
    assert not test_paths & set(speakers["path"])  # the test split is never analysed by default
    assert len(speakers) == len(dataset.manifest) - len(test_paths)


def check_cli_reuses_the_cache(findings: dict, tmp_path: Path) -> None:
    out = tmp_path / "again"
    result = CliRunner().invoke(
        app, ["findings", "--out", str(out), "--folds", "3", "--jobs", "1", "--no-mlflow"]
    )
    assert result.exit_code == 0, result.output
    for section in findings["result"].sections:
        assert section.title in result.output
    assert (out / "findings.html").exists()
    first = pd.read_csv(findings["out"] / "words_speakers.csv")
    again = pd.read_csv(out / "words_speakers.csv")
    pd.testing.assert_frame_equal(first, again)  # same fold models: cached, not retrained


def test_an_unknown_model_is_a_one_line_error(tracking: str) -> None:
    result = CliRunner().invoke(app, ["findings", "--model", "models:/nothing@here"])
    assert result.exit_code == 2 and "no registered model at models:/nothing@here" in result.output


def test_an_experiments_run_is_a_subject_by_its_run_uri(tracking: str) -> None:
    import mlflow

    from speechprint.findings.subject import resolve_run

    client = mlflow.MlflowClient(tracking)
    run = client.create_run(client.create_experiment("frame-models"))
    assert resolve_run(f"runs:/{run.info.run_id}", None, None) == run.info.run_id
    result = CliRunner().invoke(app, ["findings", "--model", "runs:/0123456789abcdef"])
    assert result.exit_code == 2 and "no MLflow run at runs:/0123456789abcdef" in result.output
