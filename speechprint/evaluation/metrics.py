"""Class-balanced evaluation: balanced accuracy first, always beside chance and majority baselines."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    recall_score,
)


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """Mean recall over the classes present in ``y_true`` (sklearn's definition)."""
    if not len(y_true):
        return float("nan")
    with warnings.catch_warnings():
        # Predicted classes absent from y_true are what that definition leaves out on purpose
        # (a corpus of one label, a small split), not a mistake to tell the user about.
        warnings.filterwarnings(
            "ignore", message="(y_pred contains classes not in y_true|A single label was found)"
        )
        return float(balanced_accuracy_score(y_true, y_pred))


def apply_temperature(proba: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities with their log divided by ``temperature`` (> 1 softer, < 1 sharper)."""
    if temperature == 1.0 or not len(proba):
        return proba
    logits = np.log(np.clip(np.asarray(proba, dtype=np.float64), 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    scaled: np.ndarray = (out / out.sum(axis=1, keepdims=True)).astype(np.asarray(proba).dtype)
    return scaled


def evaluate(
    y_true: Sequence[int] | np.ndarray,
    proba: np.ndarray,
    labels: Sequence[str],
    *,
    train_counts: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Every metric SpeechPrint reports for one split (JSON-ready).

    ``majority_baseline`` is what always predicting the training majority class scores here:
    its accuracy is the class share, its balanced accuracy 1/C (of the classes present).
    """
    y_true = np.asarray(y_true, dtype=int)
    proba = np.asarray(proba, dtype=float)
    n_classes = len(labels)
    index = list(range(n_classes))
    y_pred = proba.argmax(axis=1)
    confusion = confusion_matrix(y_true, y_pred, labels=index)
    row_sums = confusion.sum(axis=1, keepdims=True)
    normalized = np.divide(
        confusion, row_sums, out=np.zeros_like(confusion, dtype=float), where=row_sums > 0
    )
    recall = recall_score(y_true, y_pred, labels=index, average=None, zero_division=0)
    top3 = np.argsort(-proba, axis=1)[:, : min(3, n_classes)]
    if train_counts:
        majority = int(np.argmax([train_counts.get(label, 0) for label in labels]))
    else:
        majority = int(np.bincount(y_true, minlength=n_classes).argmax())
    constant = np.full_like(y_true, majority)
    present = np.unique(y_true)
    return {
        "n": int(len(y_true)),
        "labels": list(labels),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": balanced_accuracy(y_true, y_pred, n_classes),
        "macro_f1": float(
            f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)
        ),
        "top3_accuracy": float(np.mean([t in row for t, row in zip(y_true, top3)])),
        "per_class_recall": {labels[i]: float(recall[i]) for i in index},
        "support": {labels[i]: int(row_sums[i, 0]) for i in index},
        "confusion": confusion.tolist(),
        "confusion_normalized": normalized.round(4).tolist(),
        # A uniform guess over the model's classes recalls each present class 1/n of the time,
        # whichever classes the split holds (a corpus of one label: 1/17, not 1).
        "chance": 1.0 / max(n_classes, 1),
        "majority_baseline": {
            "label": labels[majority],
            "accuracy": float(accuracy_score(y_true, constant)),
            "balanced_accuracy": balanced_accuracy(y_true, constant, n_classes),
        },
    }


def score_split(
    y_true: Sequence[int] | np.ndarray,
    proba: np.ndarray,
    labels: Sequence[str],
    *,
    train_counts: dict[str, int] | None = None,
    files: Sequence[str] | None = None,
) -> dict[str, Any]:
    """One split's record: ``evaluate``'s metrics, the bootstrap interval of balanced accuracy,
    and the rows behind them (labels, predictions, probabilities, ``files`` when given) that
    ensembles and paired comparisons reuse.

    ``train_counts`` (the training split's class counts, kept in the record as
    ``train_counts``) choose the majority baseline's class: a split is never its own baseline.

    >>> record = score_split([0, 1, 1], np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]),
    ...                      ["a", "b"], train_counts={"a": 5, "b": 2})
    >>> record["balanced_accuracy"], record["y_pred"], record["majority_baseline"]["label"]
    (0.75, [0, 1, 0], 'a')
    """
    y_true = np.asarray(y_true, dtype=int)
    proba = np.asarray(proba, dtype=float)
    predicted = proba.argmax(axis=1) if len(proba) else np.zeros(0, dtype=int)
    record = evaluate(y_true, proba, labels, train_counts=train_counts)
    record["balanced_accuracy_ci"] = list(bootstrap_interval(y_true, predicted))
    record["y_true"] = y_true.tolist()
    record["y_pred"] = predicted.tolist()
    record["proba"] = np.round(proba, 6).tolist()
    if files is not None:
        record["files"] = list(files)
    if train_counts:
        record["train_counts"] = {label: int(train_counts.get(label, 0)) for label in labels}
    return record


def training_counts(record: dict[str, Any]) -> dict[str, int] | None:
    """The training class counts a split's record was scored against (``score_split``); for a
    record written before it kept them, its majority class alone, all the baseline needs."""
    if "train_counts" in record:
        return dict(record["train_counts"])
    majority = record.get("majority_baseline", {}).get("label")
    return {majority: 1} if majority else None


def bootstrap_interval(
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of balanced accuracy, resampling recordings (= speakers)."""
    y_true = np.asarray(y_true, dtype=int)
    if len(y_true) == 0:
        return float("nan"), float("nan")
    samples = np.random.default_rng(seed).integers(0, len(y_true), size=(n_resamples, len(y_true)))
    return _percentiles(_resampled_scores(y_true, np.asarray(y_pred, dtype=int), samples), level)


@dataclass(frozen=True)
class PairedDifference:
    """Balanced accuracy of A minus B on the same speakers, with a paired bootstrap interval."""

    difference: float
    low: float
    high: float
    n: int

    @property
    def distinguishable(self) -> bool:
        """Whether the interval excludes zero."""
        return self.low > 0 or self.high < 0

    def verdict(self, a: str = "A", b: str = "B") -> str:
        interval = f"{self.difference:+.3f} [95% CI {self.low:+.3f} to {self.high:+.3f}]"
        if not self.distinguishable:
            return f"{a} - {b}: {interval}; not distinguishable from zero on {self.n} speakers"
        better = a if self.difference > 0 else b
        return f"{a} - {b}: {interval}; {better} is better (the interval excludes zero)"


def paired_bootstrap(
    y_true: Sequence[int] | np.ndarray,
    pred_a: Sequence[int] | np.ndarray,
    pred_b: Sequence[int] | np.ndarray,
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> PairedDifference:
    """The difference of balanced accuracies, resampling speakers jointly for both predictions.

    Pairing removes the variance the two models share (which speakers happen to be in the
    test set), so the interval of the difference is much narrower than two separate intervals.

    >>> truth = [0, 1] * 10
    >>> d = paired_bootstrap(truth, truth, [0] * 20)  # perfect vs always "0"
    >>> d.difference, (d.low, d.high), d.distinguishable
    (0.5, (0.5, 0.5), True)
    """
    y_true = np.asarray(y_true, dtype=int)
    pred_a, pred_b = np.asarray(pred_a, dtype=int), np.asarray(pred_b, dtype=int)
    n = len(y_true)
    if n == 0:
        return PairedDifference(float("nan"), float("nan"), float("nan"), 0)
    samples = np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))
    diffs = _resampled_scores(y_true, pred_a, samples) - _resampled_scores(y_true, pred_b, samples)
    observed = balanced_accuracy(y_true, pred_a, 0) - balanced_accuracy(y_true, pred_b, 0)
    low, high = _percentiles(diffs, level)
    return PairedDifference(float(observed), low, high, n)


def _resampled_scores(y_true: np.ndarray, y_pred: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """Balanced accuracy of each resample (rows of ``samples``), vectorised with ``bincount``."""
    n_resamples = len(samples)
    n_classes = int(max(y_true.max(), y_pred.max())) + 1
    offsets = (np.arange(n_resamples) * n_classes)[:, None]
    truth = y_true[samples]
    flat = (truth + offsets).ravel()
    counts = np.bincount(flat, minlength=n_resamples * n_classes).reshape(n_resamples, n_classes)
    hits = np.bincount(
        flat,
        weights=(truth == y_pred[samples]).ravel().astype(float),
        minlength=n_resamples * n_classes,
    ).reshape(n_resamples, n_classes)
    present = counts > 0
    recall = np.divide(hits, counts, out=np.zeros_like(hits), where=present)
    scores: np.ndarray = recall.sum(1) / present.sum(1)
    return scores


def _percentiles(scores: np.ndarray, level: float) -> tuple[float, float]:
    alpha = (1 - level) / 2
    return float(np.quantile(scores, alpha)), float(np.quantile(scores, 1 - alpha))


def plot_confusion(
    confusion: Sequence[Sequence[float]] | np.ndarray,
    labels: Sequence[str],
    *,
    normalized: bool = True,
    title: str = "",
) -> Any:
    """A confusion matrix figure (rows: true class), row-normalised by default, annotated."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(confusion, dtype=float)
    if normalized:
        sums = matrix.sum(axis=1, keepdims=True)
        matrix = np.divide(matrix, sums, out=np.zeros_like(matrix), where=sums > 0)
    # Optuna's plots switch matplotlib to the ggplot style globally; a heat map needs no grid.
    with plt.style.context("default"):
        size = max(4.0, 0.55 * len(labels) + 2.5)
        figure, axes = plt.subplots(figsize=(size + 1, size))
        image = axes.imshow(matrix, cmap="Blues", vmin=0, vmax=1 if normalized else None)
        axes.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
        axes.set_yticks(range(len(labels)), labels, fontsize=8)
        axes.set_xlabel("predicted")
        axes.set_ylabel("true")
        axes.set_title(f"{title} ({'row-normalised' if normalized else 'counts'})".strip())
        threshold = matrix.max() / 2 if matrix.size else 0
        for i in range(matrix.shape[0]):
            for j in range(matrix.shape[1]):
                if matrix[i, j]:
                    text = f"{matrix[i, j]:.2f}" if normalized else f"{int(matrix[i, j])}"
                    axes.text(
                        j,
                        i,
                        text,
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="white" if matrix[i, j] > threshold else "black",
                    )
        figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
        figure.tight_layout()
    return figure
