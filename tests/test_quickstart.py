"""The README's main command, as a new user runs it (fewer trials and speakers, same path).

The command is read from the README's quick start (its last step, after the install), so the test
runs what the page says; tests/test_docs.py checks the rest of that command line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_quickstart_command() -> list[str]:
    """The words after ``speechprint`` in the README's quick start (``["quickstart"]``)."""
    section = README.read_text(encoding="utf-8").split("## Quick start", 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    last_step = block.strip().split("&&")[-1].split()
    assert last_step[0] == "speechprint", block
    return last_step[1:]


@pytest.mark.slow
def test_quickstart_runs_the_whole_loop_with_two_trials(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": "",
        "SPEECHPRINT_CACHE_DIR": str(tmp_path / "cache"),
    }
    env.pop("MLFLOW_TRACKING_URI")  # the default store, in the working folder, as for a new user
    env.pop("SPEECHPRINT_ARTIFACT_ROOT", None)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "speechprint",
            *readme_quickstart_command(),
            "--workdir",
            str(tmp_path),
            "--n-trials",
            "2",
            "--speakers-per-class",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    for step in (
        "1/5 demo corpus",
        "2/5 study quickstart",
        "3/5 promote",
        "4/5 predict",
        "5/5 report",
    ):
        assert step in out
    assert out.count("trial    ") == 2  # the one trial line, once per trial
    assert "'champion' -> v1" in out
    # The UI link opens the trials, not MLflow 3.17's GenAI overview.
    link = next(line for line in out.splitlines() if line.startswith("the trials in the MLflow UI"))
    assert link.startswith("the trials in the MLflow UI: http://127.0.0.1:5000/#/experiments/")
    assert link.endswith(
        "/runs?workflowType=machine_learning&orderByKey=metrics."
        "%60best%2Fval_balanced_accuracy%60&orderByAsc=false"
    )
    assert len(list((tmp_path / "demo-corpus" / "recordings").glob("*.mp3"))) == 40
    report = tmp_path / "reports" / "quickstart"
    assert (report / "summary.md").exists() and list(report.glob("*.png"))
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=store, registry_uri=store)
    version = client.get_model_version_by_alias("speechprint-accent", "champion")
    assert version.tags["study"] == "quickstart"
