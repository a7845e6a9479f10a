"""Many examples per speaker: statistics of random crops for training, windows averaged at scoring."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from speechprint.core.errors import ConfigError
from speechprint.evaluation.units import by_speaker
from speechprint.inference.classifier import AccentClassifier, segment_statistics
from speechprint.models import build_model
from speechprint.train import RunConfig, TrainConfig, run
from speechprint.train.augment import crop_statistics
from speechprint.train.errors import IncompatibleError
from speechprint.train.prepare import prepare_data


def _sequences() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.normal(size=(n, 3)).astype(np.float32) for n in (50, 7, 23)]


def test_crop_statistics_are_recording_major_means_and_stds_of_windows() -> None:
    sequences = _sequences()
    stats = crop_statistics(sequences, crop_frames=10, crops=4, rng=np.random.default_rng(1))
    assert stats.shape == (3 * 4, 6) and stats.dtype == np.float32
    # The 7-frame recording is shorter than a crop: each of its 4 rows is its whole statistics.
    whole = np.concatenate([sequences[1].mean(0), sequences[1].std(0)])
    assert np.allclose(stats[4:8], whole, atol=1e-6)
    # A crop of the long one is some window of 10 consecutive frames.
    windows = [
        np.concatenate([sequences[0][s : s + 10].mean(0), sequences[0][s : s + 10].std(0)])
        for s in range(41)
    ]
    assert all(np.isclose(windows, row, atol=1e-5).all(axis=1).any() for row in stats[:4])


def test_segment_statistics_cover_each_recording_with_its_owner() -> None:
    stats, owners = segment_statistics(_sequences(), crop_frames=10, max_segments=8)
    assert stats.shape == (len(owners), 6)
    assert list(np.bincount(owners)) == [5, 1, 2]  # 50 frames: 5 windows; 7: one; 23: 10 + 13
    stats, owners = segment_statistics([np.ones(6, np.float32)], crop_frames=10)
    assert stats.shape == (1, 6) and list(owners) == [0]  # a pooled vector stays one row


def _crop_classifier() -> AccentClassifier:
    torch.manual_seed(0)
    return AccentClassifier(
        extractor_name="mfcc_seq",
        extractor_params={},
        labels=("a", "b"),
        model_name="mlp",
        model_params={},
        input_dim=6,
        pooled=True,
        mean=np.zeros(6, np.float32),
        std=np.ones(6, np.float32),
        crop_frames=10,
        model=build_model("mlp", 6, 2, {}).eval(),
    )


def test_a_recording_scores_as_the_mean_of_its_windows_and_a_speaker_of_its_recordings(
    tmp_path: Path,
) -> None:
    classifier = _crop_classifier()
    sequences = _sequences()
    proba = classifier.predict_proba_features(sequences)
    stats, owners = segment_statistics(sequences, 10, classifier.max_segments)
    with torch.inference_mode():
        windows = torch.softmax(classifier.model(torch.from_numpy(stats)), -1).numpy()
    for index in range(3):
        assert np.allclose(proba[index], windows[owners == index].mean(0), atol=1e-6)
    # Speaker level: a speaker's recordings averaged (here speaker "s" has the first two).
    speaker_proba, _, speakers = by_speaker(proba, np.array([0, 0, 1]), ["s", "s", "t"])
    assert np.allclose(speaker_proba[list(speakers).index("s")], proba[:2].mean(0), atol=1e-6)
    path = tmp_path / "crops.pt"
    classifier.save(path)
    loaded = AccentClassifier.load(path)
    assert loaded.crop_frames == 10
    assert np.allclose(loaded.predict_proba_features(sequences), proba, atol=1e-6)


def test_crop_frames_is_validated() -> None:
    with pytest.raises(ValueError, match="crop_frames"):
        TrainConfig(crop_frames=2)
    with pytest.raises(ConfigError, match="crops"):
        RunConfig.from_dict(
            {"archive": "a", "extractor": "mfcc_seq", "model": "mlp", "train": {"crops": 0}}
        )


@pytest.mark.slow  # extraction and training on 2 shared cores: 30-50 s
def test_a_pooled_model_trains_on_crops_of_the_demo_corpus(tiny_archive: Path) -> None:
    config = RunConfig(
        archive=str(tiny_archive),
        extractor="mfcc_seq",
        model="mlp",
        min_count=3,
        jobs=1,
        train=TrainConfig(epochs=2, batch_size=8, crop_frames=40, crops=3),
    )
    data = prepare_data(config, progress=False)
    result = run(config, data)
    assert result.classifier.crop_frames == 40
    assert 0.0 <= result.val["balanced_accuracy"] <= 1.0
    assert len(result.epoch_seconds) == len(result.history) == 2  # what each epoch cost
    # Crops need frames: a pooled extractor's one vector cannot be cropped.
    pooled = config.model_copy(update={"extractor": "mfcc_mean"})
    with pytest.raises(IncompatibleError, match="crop_frames"):
        run(pooled, prepare_data(pooled, progress=False))
