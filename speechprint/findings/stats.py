"""Small statistics shared by the sections: bootstrap intervals, balanced accuracy, smoothing."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def bootstrap(
    statistic: Callable[[np.ndarray], float], n: int, *, n_boot: int = 500, seed: int = 0
) -> tuple[float, float]:
    """95% percentile interval of ``statistic(indices)`` over resampled indices ``0..n-1``."""
    rng = np.random.default_rng(seed)
    values = [statistic(rng.integers(0, n, n)) for _ in range(n_boot)]
    finite = np.asarray([v for v in values if np.isfinite(v)])
    if len(finite) == 0:
        return float("nan"), float("nan")
    low, high = np.percentile(finite, [2.5, 97.5])
    return float(low), float(high)


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean recall over the classes present in ``y_true`` (NaN when empty)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    classes = np.unique(y_true)
    if len(classes) == 0:
        return float("nan")
    return float(np.mean([np.mean(y_pred[y_true == c] == c) for c in classes]))


def kernel_smooth(x: np.ndarray, y: np.ndarray, grid: np.ndarray, bandwidth: float) -> np.ndarray:
    """Nadaraya-Watson (Gaussian kernel) estimate of E[y | x] on ``grid``."""
    weights = np.exp(-0.5 * ((grid[:, None] - x[None, :]) / bandwidth) ** 2)
    total = weights.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 1e-9, weights @ y / total, np.nan)
