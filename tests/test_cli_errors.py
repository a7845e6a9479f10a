"""The CLI's error policy, as a user meets it: real ``speechprint`` processes.

User errors (``SpeechPrintError``) are one line and exit 2; ``--debug`` shows their traceback;
bugs (here a third-party model, installed as a plugin, that raises inside ``forward``) keep theirs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

PLUGIN = """
import torch
from speechprint.models import MODELS


class Broken(torch.nn.Module):
    def __init__(self, input_dim, n_classes):
        super().__init__()
        self.linear = torch.nn.Linear(input_dim, n_classes)

    def forward(self, x, lengths=None):
        return self.linear(x[:, :3])  # a shape bug: the layer expects input_dim features


@MODELS.register("broken_plugin", accepts={"pooled"}, family="torch")
def build(input_dim, n_classes, **params):
    return Broken(input_dim, n_classes)
"""


@pytest.fixture()
def plugin_path(tmp_path: Path) -> Path:
    """A third-party distribution registering ``broken_plugin`` through an entry point."""
    root = tmp_path / "site"
    root.mkdir()
    (root / "brokenplugin.py").write_text(PLUGIN)
    info = root / "brokenplugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: brokenplugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[speechprint.models]\nbroken = brokenplugin\n")
    return root


def speechprint(
    *args: str, cwd: Path, pythonpath: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{cwd / 'mlflow.db'}",
        "SPEECHPRINT_ARTIFACT_ROOT": str(cwd / "mlruns"),
    }
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "speechprint", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_user_errors_are_one_line_and_debug_shows_the_traceback(tmp_path: Path) -> None:
    plain = speechprint("study", "show", "nothing-here", cwd=tmp_path)
    assert plain.returncode == 2
    assert "error: no study named 'nothing-here'" in plain.stderr
    assert "Traceback" not in plain.stderr
    debug = speechprint("--debug", "study", "show", "nothing-here", cwd=tmp_path)
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "StorageError" in debug.stderr


@pytest.mark.slow
def test_a_model_bug_shows_its_traceback_in_runs_and_studies(
    tmp_path: Path, tiny_archive: Path, plugin_path: Path, cache_dir: Path
) -> None:
    experiment = tmp_path / "broken.yaml"
    experiment.write_text(
        yaml.safe_dump(
            {
                "name": "broken",
                "data": {"archive": str(tiny_archive), "min_count": 3},
                "extractor": "mfcc_mean",
                "model": "broken_plugin",
                "train": {"epochs": 1},
            }
        )
    )
    run = speechprint("run", str(experiment), cwd=tmp_path, pythonpath=plugin_path)
    assert run.returncode == 1, run.stderr  # a bug, not a user error (2)
    assert "Traceback" in run.stderr and "brokenplugin.py" in run.stderr

    study = tmp_path / "study.yaml"
    study.write_text(
        yaml.safe_dump(
            {
                "name": "broken-study",
                "data": {"archive": str(tiny_archive), "min_count": 3},
                "extractors": ["mfcc_mean"],
                "models": ["broken_plugin", "logreg"],
                "budget": {"n_trials": 2},
                "train": {"epochs": 1},
                "baselines": [{"pair": "mfcc_mean+broken_plugin"}, {"pair": "mfcc_mean+logreg"}],
            }
        )
    )
    result = speechprint("study", "run", str(study), cwd=tmp_path, pythonpath=plugin_path)
    assert result.returncode == 0, result.stderr  # the crash is a failed trial; the study goes on
    assert "trial    0 FAIL mfcc_mean+broken_plugin: RuntimeError" in result.stdout
    assert "trial    1 COMPLETE mfcc_mean+logreg" in result.stdout
    assert "Traceback" in result.stderr and "brokenplugin.py" in result.stderr
