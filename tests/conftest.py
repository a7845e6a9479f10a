"""Shared fixtures: real data in place, a tiny synthetic corpus, and temporary MLflow/Optuna stores."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_ARCHIVE = REPO_ROOT.parent / "shared" / "data" / "saa8k"
SHARED_SO762 = REPO_ROOT.parent / "shared" / "data" / "so762"


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
def shared_so762() -> Path:
    """speechocean762's train split (Kaldi layout), read in place. Skips on users' machines,
    fails in CI."""
    if not (SHARED_SO762 / "train" / "wav.scp").exists():
        message = f"speechocean762 not found at {SHARED_SO762} (../shared is absent)"
        if _require_shared():
            pytest.fail(f"{message}, but SPEECHPRINT_REQUIRE_SHARED=1")
        pytest.skip(message)
    return SHARED_SO762


@pytest.fixture(scope="session")
def tiny_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny demo corpus in the archive layout, synthesised once per test session."""
    from speechprint.data.synth import synthesize_corpus

    out = tmp_path_factory.mktemp("tiny-archive")
    return synthesize_corpus(out, speakers_per_class=4, seconds=3.0, seed=0, progress=False)


SESSION_CACHES = ("SPEECHPRINT_MODELS_DIR", "MPLCONFIGDIR")
_saved_environ: dict[str, str | None] = {}
_session_root = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    """What a test run may share goes to one temporary folder, removed at the end, never the
    user's caches: the joined Whisper weights (145 MB, made once) and matplotlib's font cache.
    Set here, before any test module imports matplotlib."""
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="speechprint-tests-"))
    config.stash[_session_root] = root
    for name, folder in zip(SESSION_CACHES, ("models", "matplotlib"), strict=True):
        _saved_environ[name] = os.environ.get(name)
        os.environ[name] = str(root / folder)


def pytest_unconfigure(config: pytest.Config) -> None:
    import shutil

    root = config.stash.get(_session_root, None)
    if root is not None:
        shutil.rmtree(root, ignore_errors=True)
    for name, value in _saved_environ.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test's feature cache (fusion parts over waveforms included) is its own temporary
    folder, also for the processes it starts: no test reads what another extracted, and none
    writes to ~/.cache."""
    path = tmp_path / "feature-cache"
    monkeypatch.setenv("SPEECHPRINT_CACHE_DIR", str(path))
    return path


@pytest.fixture()
def tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A real MLflow store (SQLite + artifact folder) in a temporary folder."""
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("SPEECHPRINT_ARTIFACT_ROOT", str(tmp_path / "mlruns"))
    monkeypatch.chdir(tmp_path)
    # tracking.client() sets MLflow's process-wide URIs (pyfunc loading reads them), and they
    # outrank the variable: a bare MlflowClient() would otherwise write to an earlier test's store,
    # whose folder is gone once that test passed.
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
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


@pytest.fixture()
def misbehaving_models() -> Iterator[tuple[str, str]]:
    """Two torch models registered for one test: ``test_crash`` raises in ``forward``,
    ``test_nan`` returns NaN logits. Both accept pooled and sequence features; yields the names."""
    import torch

    from speechprint.models import MODELS

    class Crash(torch.nn.Module):
        def __init__(self, input_dim: int, n_classes: int) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(input_dim, n_classes)

        def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
            raise RuntimeError("deliberate crash inside the model")

    class NaN(Crash):
        def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
            return self.linear(x) * float("nan")

    def build_crash(input_dim: int, n_classes: int, **params: Any) -> Crash:
        return Crash(input_dim, n_classes)

    def build_nan(input_dim: int, n_classes: int, **params: Any) -> NaN:
        return NaN(input_dim, n_classes)

    kinds = {"pooled", "sequence"}
    # replace=True: an older test module may still register these names globally at import.
    with (
        MODELS.temporary("test_crash", build_crash, accepts=kinds, family="torch", replace=True),
        MODELS.temporary("test_nan", build_nan, accepts=kinds, family="torch", replace=True),
    ):
        yield ("test_crash", "test_nan")


def _require_pretrained() -> bool:
    return os.environ.get("SPEECHPRINT_REQUIRE_PRETRAINED", "") == "1"


class PretrainedPolicy:
    """The one place that decides what a test does without the ``[pretrained]`` extra:
    skip naming the missing package, or fail when ``SPEECHPRINT_REQUIRE_PRETRAINED=1`` (CI)."""

    def __call__(self, *modules: str) -> None:
        """Skip (or fail) unless every module in ``modules`` imports."""
        import importlib

        for module in modules:
            try:
                importlib.import_module(module)
            except ImportError as error:
                self.missing(module, error)

    def missing(self, package: str | None, error: BaseException) -> NoReturn:
        """Skip (or fail) for ``error``, an ImportError (e.g. ``MissingExtraError``) met in a test."""
        package = package or getattr(error, "name", None) or "a package"
        reason = f"{package} is not installed ({error}); install speechprint[pretrained]"
        if _require_pretrained():
            pytest.fail(f"{reason}, but SPEECHPRINT_REQUIRE_PRETRAINED=1")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def require_pretrained() -> PretrainedPolicy:
    """``require_pretrained("ctranslate2", ...)`` skips/fails a test without those packages;
    ``require_pretrained.missing(None, error)`` does the same for an ImportError it caught."""
    return PretrainedPolicy()


@pytest.fixture(scope="session")
def small_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Enough synthetic speakers per accent (8) for a model to beat chance on 2 test speakers."""
    from speechprint.data.synth import synthesize_corpus

    out = tmp_path_factory.mktemp("small-archive")
    return synthesize_corpus(out, speakers_per_class=8, seconds=4.0, seed=1, progress=False)
