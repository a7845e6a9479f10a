"""Every registered model, and every extractor x model pair for one epoch on the tiny corpus."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest
import torch

from speechprint.core.errors import ConfigError
from speechprint.features import FEATURES, make_extractor
from speechprint.inference.classifier import AccentClassifier, segment_sequences
from speechprint.models import MODELS, build_model, compatible, family, incompatibility
from speechprint.models.linear import LDA_MAX_DIM
from speechprint.models.pooling import AttentiveStatsPooling, masked_mean
from speechprint.train import RunConfig, TrainConfig, resolve_device, run
from speechprint.train.prepare import prepare_data

SEQUENCE_MODELS = [
    n for n in MODELS.names() if not compatible(n, "pooled") and not n.startswith("test_")
]


@pytest.mark.parametrize("name", [n for n in MODELS.names() if not n.startswith("test_")])
def test_every_model_builds_with_its_sampled_space(name: str) -> None:
    entry = MODELS.get(name)
    study = optuna.create_study()
    trial = study.ask()
    params = entry.space(trial) if entry.space else {}
    assert all(key.startswith(f"{name}.") for key in trial.params)  # prefixed: no collisions
    model = build_model(name, 12, 4, params)
    if family(name) == "sklearn":
        x = np.random.default_rng(0).normal(size=(40, 12))
        y = np.arange(40) % 4
        proba = model.fit(x, y).predict_proba(x)
        assert proba.shape == (40, 4) and np.allclose(proba.sum(1), 1)
        return
    model.eval()
    if name in SEQUENCE_MODELS:
        out = model(torch.randn(3, 37, 12), torch.tensor([37, 20, 5]))
    else:
        out = model(torch.randn(3, 12))
    assert out.shape == (3, 4) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", SEQUENCE_MODELS)
def test_sequence_models_ignore_padding(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, 8, 3, {}).eval()
    x = torch.randn(1, 30, 8)
    padded = torch.cat([x, torch.randn(1, 20, 8) * 100], dim=1)
    lengths = torch.tensor([30])
    with torch.inference_mode():
        assert torch.allclose(model(x, lengths), model(padded, lengths), atol=1e-4)


def test_pooling_masks_padding() -> None:
    x = torch.randn(2, 10, 4)
    lengths = torch.tensor([10, 6])
    assert torch.allclose(masked_mean(x, lengths)[1], x[1, :6].mean(0), atol=1e-6)
    pool = AttentiveStatsPooling(4).eval()
    noisy = x.clone()
    noisy[1, 6:] = 1e3
    assert torch.allclose(pool(x, lengths)[1], pool(noisy, lengths)[1], atol=1e-5)


def test_compatibility_rules() -> None:
    assert compatible("mlp", "pooled") and compatible("mlp", "sequence")  # pooled by statistics
    assert compatible("bilstm", "sequence") and not compatible("bilstm", "pooled")
    assert "needs sequence" in incompatibility("lstm", "mfcc_mean", "pooled")


def test_segments_cover_long_sequences() -> None:
    segments, owners = segment_sequences([np.zeros((1000, 2)), np.zeros((50, 2))], 400)
    assert [len(s) for s in segments] == [400, 400, 400, 50] and list(owners) == [0, 0, 0, 1]


PAIRS = [
    (e, m)
    for e in FEATURES.names()
    for m in MODELS.names()
    if not m.startswith("test_")
    and compatible(m, FEATURES.get(e).obj.kind)
    and not (m == "lda" and (make_extractor(e).output_dim() or 0) > LDA_MAX_DIM)
]  # whisper_words (36,352 dims) and phones (21,115): lda refuses them by name (below)


def test_lda_refuses_inputs_whose_covariance_would_not_fit() -> None:
    with pytest.raises(ConfigError, match=r"lda on 36352 dimensions needs .* \(10 GiB\)"):
        build_model("lda", 36352, 17, {})


@pytest.fixture(scope="module")
def prepared(tiny_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Features of the tiny corpus for every extractor, extracted once for the module."""
    cache = tmp_path_factory.mktemp("pair-cache")
    out = {}
    for extractor in FEATURES.names():
        config = RunConfig(
            archive=str(tiny_archive),
            extractor=extractor,
            model="mlp",
            min_count=3,
            cache_dir=str(cache),
            jobs=1,
        )
        try:
            out[extractor] = prepare_data(config, progress=False)
        except ImportError as error:  # the [pretrained] extra is optional on users' machines
            out[extractor] = error
    return out


@pytest.mark.slow
@pytest.mark.parametrize(("extractor", "model"), PAIRS, ids=[f"{e}+{m}" for e, m in PAIRS])
def test_every_pair_trains_one_epoch_and_round_trips(
    extractor: str, model: str, prepared: dict, tiny_archive: Path, tmp_path: Path
) -> None:
    import os

    data = prepared[extractor]
    if isinstance(data, ImportError):
        if os.environ.get("SPEECHPRINT_REQUIRE_PRETRAINED") == "1":
            pytest.fail(f"{extractor}: {data}")
        pytest.skip(f"{extractor}: {data}")
    config = RunConfig(
        archive=str(tiny_archive),
        extractor=extractor,
        model=model,
        min_count=3,
        train=TrainConfig(epochs=1, max_frames=60, batch_size=8),
    )
    result = run(config, data)
    assert 0.0 <= result.val["balanced_accuracy"] <= 1.0
    assert result.test is None  # the test split is untouched unless asked for
    path = tmp_path / "classifier.pt"
    result.classifier.save(path)
    loaded = AccentClassifier.load(path)
    assert loaded.device == torch.device("cpu")  # saved models always load on the CPU
    features = list(data[1].features.values())[:3]
    longer = [np.concatenate([f, f, f]) if f.ndim == 2 else f for f in features]
    assert np.allclose(
        loaded.predict_proba_features(features),
        result.classifier.predict_proba_features(features),
        atol=1e-5,
    )
    assert loaded.predict_proba_features(longer).shape == (3, len(result.classifier.labels))


def _small_classifier() -> AccentClassifier:
    torch.manual_seed(0)
    return AccentClassifier(
        extractor_name="mfcc_mean",
        extractor_params={},
        labels=("a", "b"),
        model_name="mlp",
        model_params={},
        input_dim=4,
        pooled=True,
        mean=np.zeros(4, np.float32),
        std=np.ones(4, np.float32),
        model=build_model("mlp", 4, 2, {}).eval(),
    )


def test_pyfunc_loads_on_cpu_unless_told_otherwise(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from speechprint.core.errors import ConfigError
    from speechprint.inference.pyfunc import CLASSIFIER_ARTIFACT, AccentModel

    path = tmp_path / "classifier.pt"
    _small_classifier().save(path)
    model = AccentModel()
    model.load_context(
        SimpleNamespace(artifacts={CLASSIFIER_ARTIFACT: str(path)}, model_config={"top_k": 2})
    )
    assert model.classifier.device == torch.device("cpu") and model.top_k == 2
    model.load_context(
        SimpleNamespace(artifacts={CLASSIFIER_ARTIFACT: str(path)}, model_config={"device": "auto"})
    )
    assert model.classifier.device.type == resolve_device("auto").type
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match=r"train\.device"):
            model.load_context(
                SimpleNamespace(
                    artifacts={CLASSIFIER_ARTIFACT: str(path)}, model_config={"device": "cuda"}
                )
            )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_classifier_on_cuda_predicts_like_on_cpu_and_saves_for_cpu(tmp_path: Path) -> None:
    classifier = _small_classifier()
    features = [np.random.default_rng(i).normal(size=(30, 2)).astype(np.float32) for i in range(5)]
    on_cpu = classifier.predict_proba_features(features)
    classifier.to("cuda")
    assert classifier.device.type == "cuda"
    assert np.allclose(classifier.predict_proba_features(features), on_cpu, atol=1e-5)
    classifier.save(tmp_path / "classifier.pt")
    loaded = AccentClassifier.load(tmp_path / "classifier.pt")
    assert loaded.device == torch.device("cpu")
    assert np.allclose(loaded.predict_proba_features(features), on_cpu, atol=1e-5)


def test_lda_weighs_regions_equally_whatever_their_share() -> None:
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.metrics import balanced_accuracy_score

    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(450, int), np.ones(50, int)]  # a region with a tenth of the speakers
    x = rng.normal(size=(500, 20)) + 0.8 * y[:, None]
    balanced = build_model("lda", 20, 2, {"shrinkage": 0.3}).fit(x, y)
    by_share = LinearDiscriminantAnalysis(solver="lsqr", shrinkage=0.3).fit(x, y)
    assert np.allclose(balanced.priors_, [0.5, 0.5])
    assert balanced_accuracy_score(y, balanced.predict(x)) > balanced_accuracy_score(
        y, by_share.predict(x)
    )
    assert np.allclose(balanced.predict_proba(x).sum(1), 1)
