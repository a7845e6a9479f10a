"""Constructed cases where the answer is known: occlusion of a word that decides the class,
calibration of over-confident probabilities, the similarity tree, the page."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from speechprint.features.alignment import ALIGNED, SKIPPED, WordSpan
from speechprint.findings.calibration import apply_temperature, fit_temperature, reliability
from speechprint.findings.occlusion import summarise, word_drops
from speechprint.inference.classifier import AccentClassifier
from speechprint.models import MODELS


class _Detector(torch.nn.Module):
    """Class 1 exactly when some real frame has feature 0 above 0.5 (one word decides)."""

    def __init__(self, input_dim: int, n_classes: int) -> None:
        super().__init__()
        self.unused = torch.nn.Linear(1, 1)  # a parameter, so the classifier finds a device

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if lengths is None:
            lengths = torch.full((x.shape[0],), x.shape[1])
        real = torch.arange(x.shape[1])[None, :] < lengths[:, None]
        peak = torch.where(real, x[..., 0], torch.tensor(-1.0)).amax(dim=1)
        evidence = 8.0 * (peak - 0.5)
        return torch.stack([-evidence, evidence], dim=1)


def _classifier() -> AccentClassifier:
    return AccentClassifier(
        extractor_name="mfcc_seq",
        extractor_params={},
        labels=("a", "b"),
        model_name="detector",
        model_params={},
        input_dim=2,
        pooled=False,
        mean=np.zeros(2, np.float32),
        std=np.ones(2, np.float32),
        segment_frames=1000,
        model=_Detector(2, 2).eval(),
    )


def test_occlusion_finds_the_one_word_that_decides_the_class() -> None:
    features = np.zeros((100, 2), np.float32)  # 4 s at 25 frames/s
    features[30:45, 0] = 1.0  # word 1 (1.2-1.8 s) carries the evidence for class "b"
    spans = [
        WordSpan(0, 0.2, 1.1, -1.0, ALIGNED),
        WordSpan(1, 1.2, 1.8, -1.0, ALIGNED),
        WordSpan(2, 2.0, 3.0, -1.0, ALIGNED),
        WordSpan(3, float("nan"), float("nan"), float("nan"), SKIPPED),
    ]
    with MODELS.temporary("detector", _Detector, accepts={"sequence"}, replace=True):
        drops = word_drops(_classifier(), features, 4.0, 1, spans)
    assert drops[1] > 0.9  # without that word the model no longer says "b"
    assert abs(drops[0]) < 0.01 and abs(drops[2]) < 0.01
    assert np.isnan(drops[3])  # a skipped word gets no value, not a guess
    table = summarise(np.stack([drops, drops]), ["b", "b"], ("a", "b"), ["w0", "w1", "w2", "w3"])
    row = table[(table["class"] == "b") & (table["word"] == "w1")].iloc[0]
    assert row["ci_low"] <= row["mean_drop"] <= row["ci_high"] and row["n"] == 2


def test_on_word_vectors_a_word_is_occluded_by_the_utterance_mean() -> None:
    """A real ``word_probe`` trained where only word 5 (Whisper-words group 7) tells the classes
    apart: occluding word 5 takes the evidence away, the other words barely move it."""
    from speechprint.features.pretrained.words import group_count, without_word
    from speechprint.models import build_model

    rng = np.random.default_rng(0)
    groups, width, n = group_count(), 4, 240
    y = np.arange(n) % 2
    X = rng.normal(size=(n, groups, width)).astype(np.float32)  # noqa: N806 - sklearn's name
    X[:, 7, :] += 3.0 * (2 * y[:, None] - 1)  # word 5: +3 for class b, -3 for class a
    X = X.reshape(n, -1)  # noqa: N806
    probe = build_model(
        "word_probe", X.shape[1], 2, {"layer_groups": groups, "components": 2, "C": 1.0}
    )
    classifier = AccentClassifier(
        extractor_name="whisper_words",
        extractor_params={},
        labels=("a", "b"),
        model_name="word_probe",
        model_params={},
        input_dim=X.shape[1],
        pooled=True,
        mean=np.zeros(X.shape[1], np.float32),
        std=np.ones(X.shape[1], np.float32),
        model=probe.fit(X, y),
    )
    speaker = X[1]  # class b
    occluded = without_word(speaker, 5).reshape(groups, width)
    assert np.array_equal(occluded[7], occluded[0]) and np.array_equal(speaker, X[1])
    spans = [WordSpan(i, 0.5 * i, 0.5 * i + 0.4, -1.0, ALIGNED) for i in range(groups - 2)]
    drops = word_drops(classifier, speaker, 30.0, 1, spans)
    assert drops[5] > 0.3 and np.nanargmax(drops) == 5
    assert np.nanmax(np.abs(np.delete(drops, 5))) < 0.1


def test_temperature_recovers_how_over_confident_the_probabilities_are() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 1.5, size=(20000, 5))
    honest = apply_temperature(np.exp(logits) / np.exp(logits).sum(1, keepdims=True), 1.0)
    y = np.array([rng.choice(5, p=p) for p in honest])
    assert reliability(honest, y)["ece"] < 0.02  # sampled from its own probabilities: calibrated
    over = apply_temperature(honest, 1 / 3)  # three times sharper than the truth
    assert reliability(over, y)["ece"] > 0.1
    temperature = fit_temperature(over, y)
    assert temperature == pytest.approx(3.0, rel=0.1)
    assert reliability(apply_temperature(over, temperature), y)["ece"] < 0.02


def test_a_classifier_with_a_temperature_softens_what_it_predicts(tmp_path: Path) -> None:
    with MODELS.temporary("detector", _Detector, accepts={"sequence"}, replace=True):
        classifier = _classifier()
        features = [np.ones((10, 2), np.float32)]
        sharp = classifier.predict_proba_features(features)[0]
        classifier.temperature = 4.0
        classifier.save(tmp_path / "c.pt")
        loaded = AccentClassifier.load(tmp_path / "c.pt")
        soft = loaded.predict_proba_features(features)[0]
    assert loaded.temperature == 4.0
    assert sharp.max() > soft.max() > 0.5 and soft.sum() == pytest.approx(1.0)


def test_the_tree_joins_the_classes_the_model_confuses_and_tests_families() -> None:
    from scipy.cluster.hierarchy import fcluster

    from speechprint.findings.similarity import family_test, similarity_tree

    labels = ["spanish", "italian", "polish", "russian"]
    confusion = np.array([[8, 4, 0, 0], [3, 9, 0, 0], [0, 0, 7, 5], [0, 1, 4, 8]], float)
    tree, dist = similarity_tree(confusion)
    clusters = fcluster(tree, 2, criterion="maxclust")
    assert clusters[0] == clusters[1] != clusters[2] == clusters[3]
    result = family_test(tree, labels, n_perm=500)
    assert result["same_family_height"] < result["different_family_height"]


def test_the_page_embeds_its_images(tmp_path: Path) -> None:
    from speechprint.findings.page import Section, write_page
    from speechprint.findings.plots import pyplot, save

    plt = pyplot()
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    image = save(fig, tmp_path / "line.png")
    page = write_page(
        [Section("s", "A <section>", "It says & shows.", [image])],
        tmp_path / "findings.html",
        title="t",
        subtitle="s",
    )
    text = page.read_text()
    assert "data:image/png;base64," in text and "A &lt;section&gt;" in text
    assert 'src="line.png"' not in text  # nothing to fetch: the page opens from disk alone


def test_the_word_summary_tells_repeated_words_apart_and_counts_real_evidence() -> None:
    import pandas as pd

    from speechprint.findings.words import _evidence_line, _named

    assert _named("26 and") == "and #26" and _named("58 and") == "and #58"
    table = pd.DataFrame(
        {
            "class": ["a", "a", "b"],
            "word": ["26 and", "58 and", "00 please"],
            "mean_drop": [0.03, 0.001, 0.02],
            "ci_low": [0.01, -0.01, -0.002],
            "ci_high": [0.05, 0.01, 0.04],
            "n": [10, 10, 0],
        }
    )
    line = _evidence_line(table)
    assert line.startswith("1 of 2 word x class cells have a bootstrap interval above zero")
    assert "0.030 (and #26, a)" in line  # the unmeasured cell (n = 0) is not the peak


def test_a_phonemes_evidence_is_found_where_only_it_tells_the_classes_apart() -> None:
    """A real logistic regression over ``phones`` profiles where only /s/'s mean frame tells the
    classes apart: setting /s/ to the training mean takes the evidence away, the other phonemes
    barely move it, and a phoneme the recording lacks (count 0) is NaN, not a guess."""
    from speechprint.features import make_extractor
    from speechprint.findings.phonemes import phoneme_drops, phoneme_indices
    from speechprint.models import build_model
    from speechprint.text.g2p import ENGLISH_PHONEMES

    fused = make_extractor(
        "fusion",
        {"parts": [{"name": "mfcc_mean"}, {"name": "phones", "params": {"model": "base"}}]},
    )
    parts = phoneme_indices(fused)
    assert parts is not None and len(parts) == len(ENGLISH_PHONEMES)
    assert parts[0][0] == 13 and len(parts[0]) == 512 + 3  # after mfcc_mean's 13: frame + stats
    assert phoneme_indices(make_extractor("mfcc_mean", {})) is None

    rng = np.random.default_rng(0)
    n, dim = 200, int(fused.output_dim())
    y = np.arange(n) % 2
    X = rng.normal(size=(n, dim)).astype(np.float32)  # noqa: N806 - sklearn's name
    s, absent = ENGLISH_PHONEMES.index("s"), ENGLISH_PHONEMES.index("ʒ")
    X[:, parts[s][:512]] += 2.0 * (2 * y[:, None] - 1)
    counts = [p[-1] for p in parts]
    X[:, counts] = 3.0
    X[:, parts[absent]] = 0.0  # never said: zeros and count 0
    model = build_model("logreg", dim, 2, {"C": 1.0})
    classifier = AccentClassifier(
        extractor_name="fusion",
        extractor_params={},
        labels=("a", "b"),
        model_name="logreg",
        model_params={},
        input_dim=dim,
        pooled=True,
        mean=X.mean(axis=0),
        std=np.ones(dim, np.float32),
        model=model.fit(X - X.mean(axis=0), y),
    )
    drops = phoneme_drops(classifier, X[1], 1, parts)
    assert np.isnan(drops[absent]) and np.isfinite(np.delete(drops, absent)).all()
    assert np.nanargmax(drops) == s and drops[s] > 0.3
    assert np.nanmax(np.abs(np.delete(drops, [s, absent]))) < 0.1
