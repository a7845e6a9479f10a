"""Non-linear models of the passage's words (``word_attn``) and the WCCN back end (``wccn``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from speechprint.core.errors import ConfigError
from speechprint.inference.classifier import AccentClassifier
from speechprint.models import build_model
from speechprint.models.backend import WithinClassNormalisation
from speechprint.train import RunConfig, TrainConfig, run
from speechprint.train.prepare import prepare_data


def test_word_attention_tells_word_positions_apart() -> None:
    torch.manual_seed(0)
    model = build_model("word_attn", 5 * 8, 3, {"layer_groups": 5, "projection": 16}).eval()
    x = torch.randn(2, 5, 8)
    swapped = x[:, [1, 0, 2, 3, 4]]  # the same vectors at other words of the passage
    with torch.inference_mode():
        out, out_swapped = model(x.reshape(2, -1)), model(swapped.reshape(2, -1))
    assert out.shape == (2, 3) and torch.isfinite(out).all()
    assert not torch.allclose(out, out_swapped)  # position embeddings: order matters
    with pytest.raises(ConfigError, match="layer_groups=3 does not divide"):
        build_model("word_attn", 40, 3, {"layer_groups": 3})


def test_wccn_whitens_the_within_class_covariance() -> None:
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 200)
    # A nuisance direction with a large spread inside every class, on top of class means.
    x = rng.normal(size=(600, 4)) * [10.0, 1.0, 1.0, 1.0] + np.eye(3, 4)[y] * 3
    z = WithinClassNormalisation(shrinkage=0.0).fit(x, y).transform(x)
    within = np.mean([np.cov(z[y == c].T) for c in range(3)], axis=0)
    assert np.allclose(within, np.eye(4), atol=1e-8)


@pytest.mark.slow  # extraction and training on 2 shared cores: 30-50 s
def test_word_and_backend_models_train_on_the_demo_corpus(tiny_archive: Path) -> None:
    """One epoch each, as the registry's parametrised pair tests train every pair; word_attn is
    given layer_groups by the extractor as whisper_words gives its 71 groups."""
    config = RunConfig(
        archive=str(tiny_archive),
        extractor="mfcc_mean",
        extractor_params={"n_mfcc": 12},
        model="word_attn",
        model_params={"layer_groups": 4, "projection": 16, "heads": 2},
        min_count=3,
        jobs=1,
        train=TrainConfig(epochs=1, batch_size=8),
    )
    data = prepare_data(config, progress=False)
    for model, params in (("word_attn", config.model_params), ("wccn", {"components": 8})):
        result = run(config.model_copy(update={"model": model, "model_params": params}), data)
        assert 0.0 <= result.val["balanced_accuracy"] <= 1.0
        features = list(data.features.features.values())[:3]
        assert result.classifier.predict_proba_features(features).shape == (
            3,
            len(result.classifier.labels),
        )


@pytest.mark.slow
def test_word_attention_on_the_passage_words_of_the_demo_corpus(
    tiny_archive: Path, tmp_path: Path, require_pretrained
) -> None:
    require_pretrained("ctranslate2", "hama")
    config = RunConfig(
        archive=str(tiny_archive),
        extractor="whisper_words",
        extractor_params={"model": "tiny.en", "cache_sources": False},
        model="word_attn",
        model_params={"projection": 32, "heads": 4},
        min_count=3,
        jobs=1,
        train=TrainConfig(epochs=1, batch_size=8),
    )
    data = prepare_data(config, progress=False)
    result = run(config, data)
    assert result.classifier.model_params["layer_groups"] == 71  # utterance mean, std, 69 words
    path = tmp_path / "word_attn.pt"
    result.classifier.save(path)
    features = list(data.features.features.values())[:2]
    assert np.allclose(
        AccentClassifier.load(path).predict_proba_features(features),
        result.classifier.predict_proba_features(features),
        atol=1e-5,
    )
