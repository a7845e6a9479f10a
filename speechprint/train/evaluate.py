"""Scoring a trained classifier on a split, and logging what a split's scores look like."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from speechprint.data.dataset import Dataset
from speechprint.evaluation.metrics import plot_confusion, score_split
from speechprint.features import FeatureSet
from speechprint.inference.classifier import AccentClassifier
from speechprint.tracking.protocol import Tracker


def evaluate_arrays(
    classifier: AccentClassifier,
    features: Sequence[np.ndarray],
    y_true: np.ndarray,
    labels: tuple[str, ...],
    train_counts: dict[str, int],
    *,
    files: list[str] | None = None,
) -> dict[str, Any]:
    """The classifier's record of one split (``score_split``)."""
    proba = classifier.predict_proba_features(features)
    return score_split(y_true, proba, labels, train_counts=train_counts, files=files)


def evaluate_split(
    classifier: AccentClassifier, dataset: Dataset, features: FeatureSet, split: str
) -> dict[str, Any]:
    """Score a trained classifier on one split of a dataset (used by promotion)."""
    frame = dataset.split(split)
    frame = frame[frame["path"].isin(features.features)]
    return evaluate_arrays(
        classifier,
        [features.features[p] for p in frame["path"]],
        frame["y"].to_numpy(),
        dataset.labels,
        dataset.class_counts("train"),
        files=list(frame["path"]),
    )


def log_best(tracker: Tracker, val: dict[str, Any], best_epoch: int) -> None:
    """The kept model's validation scores, as ``best/*`` metrics (what a study compares)."""
    low, high = val["balanced_accuracy_ci"]
    tracker.log_metrics(
        {
            "best/val_balanced_accuracy": val["balanced_accuracy"],
            "best/val_balanced_accuracy_ci_low": low,
            "best/val_balanced_accuracy_ci_high": high,
            "best/val_macro_f1": val["macro_f1"],
            "best/val_accuracy": val["accuracy"],
            "best/epoch": best_epoch,
        }
    )


def log_split(tracker: Tracker, split: str, metrics: dict[str, Any]) -> None:
    """Confusion matrices (figures and JSON) and per-class recall of one split."""
    labels = metrics["labels"]
    tracker.log_figure(
        plot_confusion(metrics["confusion"], labels, normalized=True, title=split),
        f"confusion_{split}.png",
    )
    tracker.log_figure(
        plot_confusion(metrics["confusion"], labels, normalized=False, title=split),
        f"confusion_{split}_counts.png",
    )
    tracker.log_dict(
        {
            "labels": labels,
            "counts": metrics["confusion"],
            "normalized": metrics["confusion_normalized"],
        },
        f"confusion_{split}.json",
    )
    tracker.log_dict(
        {
            label: {
                "recall": metrics["per_class_recall"][label],
                "support": metrics["support"][label],
            }
            for label in labels
        },
        f"per_class_{split}.json",
    )
