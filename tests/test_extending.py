"""docs/EXTENDING.md's examples work: its ``python`` blocks run, in order, on the tiny corpus.

Components the examples register are removed afterwards, so no other test sees them.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from speechprint.features import FEATURES, extract_features, make_extractor
from speechprint.models import MODELS, check_model_params, compatible

DOC = Path(__file__).resolve().parents[1] / "docs" / "EXTENDING.md"
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def code_blocks(language: str) -> list[str]:
    return [body for lang, body in BLOCK.findall(DOC.read_text()) if lang == language]


@contextlib.contextmanager
def run_documented(archive: Path) -> Iterator[dict[str, Any]]:
    """Run the doc's Python blocks in one namespace; unregister what they registered after."""
    features, models = set(FEATURES.names()), set(MODELS.names())
    namespace: dict[str, Any] = {"__name__": "extending_doc", "archive": archive}
    try:
        for number, block in enumerate(code_blocks("python"), start=1):
            # dont_inherit: run as a reader would, without this file's __future__ imports.
            code = compile(block, f"{DOC.name}:python block {number}", "exec", dont_inherit=True)
            exec(code, namespace)
        yield namespace
    finally:
        for name in set(FEATURES.names()) - features:
            FEATURES.unregister(name)
        for name in set(MODELS.names()) - models:
            MODELS.unregister(name)


@pytest.fixture()
def documented(tiny_archive: Path, cache_dir: Path) -> Iterator[dict[str, Any]]:
    with run_documented(tiny_archive) as namespace:
        yield namespace


def test_the_doc_has_the_three_examples() -> None:
    assert len(code_blocks("python")) == 3  # extractor, model, the run that uses both
    assert len(code_blocks("yaml")) == 1  # the study file (its schema is tested elsewhere)


def test_examples_register_and_run_on_the_tiny_corpus(documented: Any, tiny_archive: Path) -> None:
    import optuna

    from speechprint.data.archive import load_archive

    # The doc's run trained its own components for its one epoch and was scored on validation.
    result = documented["result"]
    assert (result.config.extractor, result.config.model) == ("frame_energy", "conv_pool")
    assert len(result.history) == 1 and result.best_epoch == 1
    assert result.val["n"] > 0 and 0.0 <= result.val["balanced_accuracy"] <= 1.0
    extractor = make_extractor("frame_energy")
    assert extractor.kind == "sequence" and compatible("conv_pool", extractor.kind)
    paths = list(load_archive(tiny_archive).with_audio["path"])[:3]
    features = extract_features(paths, extractor, jobs=1, progress=False)
    for path, frames in features.features.items():
        import soundfile as sf

        n_samples = int(round(sf.info(path).duration * extractor.sample_rate))
        assert frames.shape == (extractor.n_frames(n_samples), 2) and frames.dtype == np.float32

    trial = optuna.create_study().ask()
    params = MODELS.get("conv_pool").space(trial)
    assert set(trial.params) == {f"conv_pool.{name}" for name in params}  # prefixed names
    check_model_params("conv_pool", params)


def test_examples_register_their_components(documented: Any) -> None:
    assert "frame_energy" in FEATURES and "conv_pool" in MODELS


def test_what_the_examples_register_is_removed_after_them(tiny_archive: Path) -> None:
    # On its own, in any order: it runs the examples itself, then looks.
    assert "frame_energy" not in FEATURES and "conv_pool" not in MODELS
    with run_documented(tiny_archive):
        assert "frame_energy" in FEATURES and "conv_pool" in MODELS
    assert "frame_energy" not in FEATURES and "conv_pool" not in MODELS
