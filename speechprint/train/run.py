"""One run: ``run(config, data, tracker) -> Result``, used by experiments, studies and tests.

``data`` is prepared beforehand (``speechprint.train.prepare.prepare_data``), so a study prepares each
extractor once and passes the result to every trial. Training keeps all data in memory; sequence
models train on random crops of ``max_frames`` and are evaluated on every segment of a recording,
averaged per speaker. The test split is only scored when ``config.evaluate_test`` is set (fixed
experiments, promotion), never inside a study.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from speechprint.core.runtime import resolve_device, seed_everything, torch_threads
from speechprint.data.dataset import Dataset
from speechprint.evaluation.units import with_units
from speechprint.features import FeatureSet, make_extractor, pool_statistics
from speechprint.inference.classifier import STD_FLOOR, AccentClassifier, segment_statistics
from speechprint.models import (
    build_model,
    family,
    incompatibility,
    pools_sequences,
    with_layer_groups,
)
from speechprint.tracking.protocol import NullTracker, Tracker
from speechprint.train.config import RunConfig
from speechprint.train.errors import IncompatibleError
from speechprint.train.evaluate import evaluate_arrays, log_best, log_split
from speechprint.train.loop import Reporter, train_torch

if TYPE_CHECKING:
    from speechprint.train.prepare import PreparedData

logger = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")


@dataclass
class Result:
    config: RunConfig
    val: dict[str, Any]
    test: dict[str, Any] | None
    best_epoch: int
    history: list[dict[str, float]]
    classifier: AccentClassifier
    dataset_fingerprint: str
    n_skipped: int
    seconds: float
    cv: Any = None  # a CVResult when the configuration was also scored by k-fold
    epoch_seconds: list[float] = field(default_factory=list)  # what each epoch cost (torch)


def run(
    config: RunConfig,
    data: PreparedData | tuple[Dataset, FeatureSet],
    tracker: Tracker | None = None,
    *,
    report: Reporter | None = None,
) -> Result:
    """Train one configuration on prepared ``data`` and evaluate it (validation; test if asked)."""
    started = time.perf_counter()
    tracker = tracker or NullTracker()
    device = resolve_device(config.train.device)  # before any work: a missing GPU fails fast
    seed_everything(config.seed)
    torch.set_num_threads(torch_threads())
    dataset, feature_set = data
    _check_pair(config, feature_set)
    skipped = {s.file for s in feature_set.skipped}
    dataset = dataset.without(skipped) if skipped else dataset
    tracker.log_metrics({"data/skipped_files": len(skipped)})

    splits = {name: dataset.split(name) for name in SPLITS}
    # A list, or with lazy features a sequence that reads each array when it is used.
    arrays = {name: feature_set.arrays(frame["path"]) for name, frame in splits.items()}
    targets = {name: frame["y"].to_numpy() for name, frame in splits.items()}
    train_counts = dataset.class_counts("train")
    pooled = feature_set.extractor.kind == "pooled" or pools_sequences(config.model)
    classifier = _fit_normaliser(config, dataset.labels, arrays["train"], pooled)
    classifier.model_params = with_layer_groups(
        config.model, classifier.model_params, feature_set.extractor.layer_groups()
    )
    history: list[dict[str, float]] = []
    epoch_seconds: list[float] = []
    if family(config.model) == "sklearn":
        device, best_epoch = torch.device("cpu"), 0  # scikit-learn runs where numpy does
        _fit_sklearn(config, classifier, arrays["train"], targets["train"])
    else:
        logger.info("training %s on %s", config.model, device)
        best_epoch, history, epoch_seconds = train_torch(
            config,
            classifier,
            arrays,
            targets,
            train_counts,
            tracker,
            report,
            device,
            list(splits["val"]["speakerid"]),
        )
    tracker.set_tags({"device": str(device)})
    _log_layer_weights(classifier, tracker)

    val: dict[str, Any] = {}
    if len(targets["val"]):  # a refit on all development speakers has none
        val = evaluate_arrays(
            classifier, arrays["val"], targets["val"], dataset.labels, train_counts
        )
        # data.unit picks what the objective compares: clips, or speakers (clips averaged).
        val = with_units(
            val, list(splits["val"]["speakerid"]), unit=config.unit, train_counts=train_counts
        )
        log_best(tracker, val, best_epoch)
        log_split(tracker, "val", val)
    test = _score_test(config, classifier, dataset, splits["test"], arrays["test"], tracker)
    tracker.log_dict(config.to_dict(), "config.json")
    tracker.set_tags({"data_fingerprint": dataset.fingerprint})
    tracker.log_classifier(classifier)
    return Result(
        config,
        val,
        test,
        best_epoch,
        history,
        classifier,
        dataset.fingerprint,
        len(skipped),
        time.perf_counter() - started,
        epoch_seconds=epoch_seconds,
    )


def _check_pair(config: RunConfig, feature_set: FeatureSet) -> None:
    """The prepared features are the config's extractor's, and the model can train on them."""
    if feature_set.extractor.id != make_extractor(config.extractor, config.extractor_params).id:
        raise ValueError("features were prepared for another extractor than the config names")
    extractor = feature_set.extractor
    reason = incompatibility(
        config.model, config.extractor, extractor.kind, extractor.layer_groups()
    )
    if reason:
        raise IncompatibleError(reason)
    pooled_model = extractor.kind == "sequence" and pools_sequences(config.model)
    if config.train.crop_frames and not pooled_model:
        raise IncompatibleError(
            f"train.crop_frames ({config.train.crop_frames}) crops the frames of a sequence "
            f"extractor for a pooled model; {config.extractor!r} is {extractor.kind} and "
            f"{config.model!r} {'pools' if pools_sequences(config.model) else 'takes sequences'}"
            ": set crop_frames to 0, or use max_frames for sequence models"
        )


def _score_test(
    config: RunConfig,
    classifier: AccentClassifier,
    dataset: Dataset,
    frame: pd.DataFrame,
    arrays: Sequence[np.ndarray],
    tracker: Tracker,
) -> dict[str, Any] | None:
    """Test metrics only when the configuration asks for them (never inside a study)."""
    if not config.evaluate_test:
        return None
    test = evaluate_arrays(
        classifier,
        arrays,
        frame["y"].to_numpy(),
        dataset.labels,
        dataset.class_counts("train"),
        files=list(frame["path"]),
    )
    # Per clip on top (promotion and k-fold read clip rows); per speaker under "speaker".
    test = with_units(test, list(frame["speakerid"]), train_counts=dataset.class_counts("train"))
    tracker.log_metrics({f"test/{k}": v for k, v in test.items() if isinstance(v, float)})
    log_split(tracker, "test", test)
    tracker.log_dict(test, "test_metrics.json")
    return test


def _fit_sklearn(
    config: RunConfig, classifier: AccentClassifier, arrays: Sequence[np.ndarray], y: np.ndarray
) -> None:
    classifier.model = build_model(
        config.model, classifier.input_dim, len(classifier.labels), classifier.model_params
    )
    classifier.model.fit(classifier.vectors(arrays), y)


def _log_layer_weights(classifier: AccentClassifier, tracker: Tracker) -> None:
    """What a layer-weighting model learned: which encoder layers it listens to."""
    layer_weights = getattr(classifier.model, "layer_weights", None)
    if layer_weights is None:
        return
    values = layer_weights()
    tracker.log_dict({"layer_weights": values}, "layer_weights.json")
    tracker.log_metrics({f"model/layer_weight_{i}": w for i, w in enumerate(values)})


def _fit_normaliser(
    config: RunConfig, labels: tuple[str, ...], train: Sequence[np.ndarray], pooled: bool
) -> AccentClassifier:
    """Standardisation statistics from the training split only (of the windows a model trained
    on crop statistics sees, when it is)."""
    crop_frames = config.train.crop_frames if pooled else 0
    if crop_frames:
        matrix, _ = segment_statistics(list(train), crop_frames, max_segments=8)
    elif pooled:
        matrix = np.stack([pool_statistics(a) for a in train])
    else:
        matrix = np.concatenate(train, axis=0)
    mean = matrix.mean(axis=0).astype(np.float32)
    std = (matrix.std(axis=0) + STD_FLOOR).astype(np.float32)  # constant: centred only
    return AccentClassifier(
        extractor_name=config.extractor,
        extractor_params=dict(config.extractor_params),
        labels=labels,
        model_name=config.model,
        model_params=dict(config.model_params),
        input_dim=int(matrix.shape[1]),
        pooled=pooled,
        mean=mean,
        std=std,
        segment_frames=config.train.max_frames,
        crop_frames=crop_frames,
    )


def model_seed_variants(config: RunConfig, seeds: int) -> list[RunConfig]:
    """``config`` with model seeds ``config.seed + 0 .. seeds - 1`` (the data split, drawn before,
    stays), one per model to average; a scikit-learn fit is deterministic, so one."""
    if family(config.model) != "torch":
        seeds = 1
    return [config.model_copy(update={"seed": config.seed + offset}) for offset in range(seeds)]
