"""The run function: options, early stopping, the test split, configs and shipped experiments."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from speechprint.apps.experiment import load_experiment, run_experiment
from speechprint.core.errors import ConfigError
from speechprint.tracking.protocol import NullTracker
from speechprint.train import IncompatibleError, RunConfig, TrainConfig, resolve_device, run
from speechprint.train.prepare import PreparedData, prepare_data

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def deltas(tiny_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    cache = tmp_path_factory.mktemp("train-cache")
    config = RunConfig(
        archive=str(tiny_archive),
        extractor="mfcc_deltas",
        model="bilstm",
        min_count=3,
        cache_dir=str(cache),
        jobs=1,
    )
    return config, prepare_data(config, progress=False)


@pytest.mark.slow
@pytest.mark.parametrize("imbalance", ["none", "weighted", "sampler"])
@pytest.mark.parametrize("scheduler", ["plateau", "cosine", "onecycle"])
def test_training_options_run(deltas: tuple, imbalance: str, scheduler: str) -> None:
    config, data = deltas
    config = RunConfig.from_dict(
        {
            **config.to_dict(),
            "train": {
                "epochs": 2,
                "imbalance": imbalance,
                "scheduler": scheduler,
                "max_frames": 80,
                "noise_std": 0.1,
                "speed_perturb": 0.1,
            },
        }
    )
    result = run(config, data)
    assert len(result.history) == 2
    assert {"train/loss", "val/loss", "val/balanced_accuracy", "val/macro_f1"} <= set(
        result.history[0]
    )


def test_early_stopping_restores_the_best_epoch(deltas: tuple) -> None:
    config, data = deltas
    config.train = TrainConfig(epochs=30, patience=2, lr=1e-6, max_frames=80)  # nothing improves
    result = run(config, data)
    assert len(result.history) < 30
    best = max(h["val/balanced_accuracy"] for h in result.history)
    assert result.history[result.best_epoch - 1]["val/balanced_accuracy"] == best
    assert result.val["balanced_accuracy"] == pytest.approx(best)


def test_same_seed_same_result(deltas: tuple) -> None:
    config, data = deltas
    config.train = TrainConfig(epochs=2, max_frames=80)
    first, second = run(config, data), run(config, data)
    assert first.history == second.history


def test_test_split_only_when_asked(deltas: tuple) -> None:
    config, data = deltas
    config.train = TrainConfig(epochs=1, max_frames=80)
    assert run(config, data).test is None
    config.evaluate_test = True
    test = run(config, data).test
    low, high = test["balanced_accuracy_ci"]
    assert low <= test["balanced_accuracy"] <= high
    assert set(test["files"]) == set(data[0].split("test")["path"])


def test_incompatible_pair_is_refused(tiny_archive: Path, cache_dir: Path) -> None:
    config = RunConfig(
        archive=str(tiny_archive), extractor="mfcc_mean", model="lstm", min_count=3, jobs=1
    )
    data = prepare_data(config, progress=False)
    with pytest.raises(IncompatibleError, match="needs sequence"):
        run(config, data)


class TagTracker(NullTracker):
    def __init__(self) -> None:
        self.tags: dict[str, Any] = {}

    def set_tags(self, tags: dict[str, Any]) -> None:
        self.tags.update(tags)


def test_prepared_data_is_typed_and_unpacks(deltas: tuple) -> None:
    _, data = deltas
    assert isinstance(data, PreparedData)
    dataset, features = data
    assert dataset is data.dataset and features is data.features


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_training_runs_on_the_resolved_device_and_logs_it(deltas: tuple, device: str) -> None:
    config, data = deltas
    config = config.model_copy(
        update={"train": TrainConfig(epochs=1, max_frames=80, device=device)}
    )
    tracker = TagTracker()
    result = run(config, data, tracker)
    expected = resolve_device(device)
    assert tracker.tags["device"] == str(expected)
    assert result.classifier.device.type == expected.type


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_a_config_error(deltas: tuple) -> None:
    config, data = deltas
    config = config.model_copy(update={"train": TrainConfig(epochs=1, device="cuda")})
    with pytest.raises(ConfigError, match=r"train\.device: 'cuda'"):
        run(config, data)


def _machine(monkeypatch: pytest.MonkeyPatch, *, cuda: int, mps: bool) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"), [(2, True, "cuda"), (0, True, "mps"), (0, False, "cpu")]
)
def test_auto_prefers_cuda_then_mps_then_cpu(
    monkeypatch: pytest.MonkeyPatch, cuda: int, mps: bool, expected: str
) -> None:
    _machine(monkeypatch, cuda=cuda, mps=mps)
    assert resolve_device("auto") == torch.device(expected)


def test_explicit_devices_must_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    _machine(monkeypatch, cuda=2, mps=False)
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match=r"train\.device: 'cuda:2'.*2 CUDA device"):
        resolve_device("cuda:2")
    with pytest.raises(ConfigError, match=r"train\.device: 'mps'"):
        resolve_device("mps")
    _machine(monkeypatch, cuda=0, mps=False)
    with pytest.raises(ConfigError, match=r"train\.device: 'cuda:0'"):
        resolve_device("cuda:0")
    with pytest.raises(ValueError, match="device"):
        TrainConfig(device="gpu")


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match="learning_rate"):
        RunConfig.from_dict(
            {
                "archive": "x",
                "extractor": "mfcc_mean",
                "model": "mlp",
                "train": {"learning_rate": 1},
            }
        )
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="sgd")


@pytest.mark.slow
@pytest.mark.parametrize(
    "path", sorted((REPO_ROOT / "experiments").glob("*.yaml")), ids=lambda p: p.name
)
def test_shipped_experiments_smoke_run(
    path: Path, tiny_archive: Path, tracking: str, cache_dir: Path
) -> None:
    _, config = load_experiment(path, archive=str(tiny_archive))
    import yaml

    raw = yaml.safe_load(path.read_text())
    raw["data"]["min_count"] = 3  # the tiny corpus has 4 speakers per accent
    raw.setdefault("train", {})["epochs"] = 1
    small = cache_dir.parent / path.name
    small.write_text(yaml.safe_dump(raw))
    try:
        result, run_id = run_experiment(small, archive=str(tiny_archive), jobs=1)
    except ImportError as error:  # a pretrained extractor without the optional extra
        if os.environ.get("SPEECHPRINT_REQUIRE_PRETRAINED") == "1":
            pytest.fail(f"{path.name}: {error}")
        pytest.skip(f"{path.name}: {error}")
    assert run_id
    # The test split is scored exactly when the file asks for it (probes leave it alone).
    assert (result.test is not None) == config.evaluate_test


def test_a_feature_constant_in_training_is_centred_not_scaled(tmp_path: Path) -> None:
    """A phoneme the archive's passage never has is 0 in every training ``phones`` vector; on
    another text it occurs. Scaled by the std floor it would reach the model 1e5 times larger
    (a champion called 3% of so762's speakers east asian before this); centred, it stays its
    own size, and features that varied are standardised as before."""
    from speechprint.inference.classifier import STD_FLOOR
    from speechprint.train.run import _fit_normaliser

    rng = np.random.default_rng(0)
    train = [np.array([v, 0.0], dtype=np.float32) for v in rng.normal(2.0, 3.0, 50)]
    config = RunConfig(archive=str(tmp_path), extractor="mfcc_mean", model="logreg")
    classifier = _fit_normaliser(config, ("a", "b"), train, pooled=True)
    assert classifier.std[1] == pytest.approx(STD_FLOOR)
    other_text = np.array([[2.0, 0.7]], dtype=np.float32)
    z = classifier.normalise(other_text)[0]
    assert z[1] == pytest.approx(0.7)
    values = np.stack(train)[:, 0]
    assert z[0] == pytest.approx((2.0 - values.mean()) / (values.std() + STD_FLOOR), rel=1e-4)
