"""Shared fixtures: real data in place, a tiny synthetic corpus, and temporary MLflow/Optuna stores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_ARCHIVE = REPO_ROOT.parent / "shared" / "data" / "saa8k"


def _require_shared() -> bool:
    return os.environ.get("SPEECHPRINT_REQUIRE_SHARED", "") == "1"


@pytest.fixture(scope="session")
def shared_archive() -> Path:
    """The real saa8k subset, read in place. Skips on users' machines, fails in CI."""
    if not (SHARED_ARCHIVE / "speakers_all.csv").exists():
        message = f"real archive not found at {SHARED_ARCHIVE} (../shared is absent)"
        if _require_shared():
            pytest.fail(f"{message}, but SPEECHPRINT_REQUIRE_SHARED=1")
        pytest.skip(message)
    return SHARED_ARCHIVE


@pytest.fixture(scope="session")
def tiny_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny demo corpus in the archive layout, synthesised once per test session."""
    from speechprint.data.synth import synthesize_corpus

    out = tmp_path_factory.mktemp("tiny-archive")
    return synthesize_corpus(out, speakers_per_class=4, seconds=3.0, seed=0, progress=False)


@pytest.fixture()
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "feature-cache"
    monkeypatch.setenv("SPEECHPRINT_CACHE_DIR", str(path))
    return path


@pytest.fixture()
def tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A real MLflow store (SQLite + artifact folder) in a temporary folder."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("SPEECHPRINT_ARTIFACT_ROOT", str(tmp_path / "mlruns"))
    monkeypatch.chdir(tmp_path)
    return uri


@pytest.fixture(scope="session")
def shared_seed_regions() -> Path:
    """The seed notebook's region table (../shared/data/seed-regions.csv). Skips or fails as above."""
    path = SHARED_ARCHIVE.parent / "seed-regions.csv"
    if not path.exists():
        message = f"seed region table not found at {path} (../shared is absent)"
        if _require_shared():
            pytest.fail(f"{message}, but SPEECHPRINT_REQUIRE_SHARED=1")
        pytest.skip(message)
    return path
