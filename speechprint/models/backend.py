"""The back end of language and speaker recognition: within-class covariance normalisation.

Pooled encoder statistics mix the accent with the speaker and the channel. Language-ID back ends
(Hatch et al. 2006; Dehak et al. 2011) reduce the dimension, then scale the directions in which
recordings *of the same class* differ (WCCN: ``x -> B^T x`` with ``B B^T`` the inverse of the
average within-class covariance) and length-normalise, so a linear classifier leans on the
directions between classes rather than on speaker and channel nuisance. ``wccn`` is that chain
with a class-balanced logistic regression on top; its within-class covariance weighs every class
equally and is shrunk towards its mean variance (a region has a handful of speakers).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import Normalizer, StandardScaler

from speechprint.models.base import implements


class WithinClassNormalisation(BaseEstimator, TransformerMixin):
    """WCCN: centred inputs times ``W^(-1/2)``, ``W`` the class-balanced within-class covariance
    shrunk by ``shrinkage`` towards ``trace(W) / d`` times the identity."""

    def __init__(self, shrinkage: float = 0.1) -> None:
        self.shrinkage = shrinkage

    def fit(self, X: np.ndarray, y: np.ndarray) -> WithinClassNormalisation:  # noqa: N803
        X = np.asarray(X, dtype=np.float64)  # noqa: N806 - sklearn's name
        classes = np.unique(y)
        within = np.zeros((X.shape[1], X.shape[1]))
        for label in classes:
            members = X[y == label]
            centred = members - members.mean(axis=0)
            within += centred.T @ centred / max(len(members) - 1, 1)
        within /= len(classes)
        level = np.trace(within) / within.shape[0]
        within = (1 - self.shrinkage) * within + self.shrinkage * level * np.eye(within.shape[0])
        values, vectors = np.linalg.eigh(within)
        self.mean_ = X.mean(axis=0)
        self.projection_ = vectors / np.sqrt(np.maximum(values, 1e-12 * level))
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        return (np.asarray(X, dtype=np.float64) - self.mean_) @ self.projection_


class TruncatedPCA(PCA):
    """PCA that keeps at most as many components as the training data can give."""

    n_components: Any  # scikit-learn's parameter (untyped there)

    def fit(self, X: np.ndarray, y: Any = None) -> TruncatedPCA:  # noqa: N803
        self.n_components = min(int(self.n_components), X.shape[0] - 1, X.shape[1])
        return super().fit(X)

    def fit_transform(self, X: np.ndarray, y: Any = None) -> np.ndarray:  # noqa: N803
        return self.fit(X).transform(X)


@implements("wccn")
def build_wccn(
    input_dim: int,
    n_classes: int,
    components: int = 128,
    shrinkage: float = 0.1,
    C: float = 1.0,  # noqa: N803
) -> Pipeline:
    """Standardise -> ``components`` principal components -> WCCN -> length normalisation ->
    class-balanced logistic regression (the i-vector/x-vector back end of language ID)."""
    return make_pipeline(
        StandardScaler(),
        TruncatedPCA(components, random_state=0),
        WithinClassNormalisation(shrinkage),
        Normalizer(),
        LogisticRegression(C=C, class_weight="balanced", max_iter=3000),
    )
