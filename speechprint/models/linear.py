"""Linear baselines (scikit-learn) registered as models, so studies compare deep against linear.

All are class-balanced. Sequence features reach them as mean+std statistics (a linear probe).
``lda`` is the Gaussian back-end of language and speaker recognition (shared covariance, shrunk
towards the diagonal, equal priors): with ~50 speakers per region and 1,000+ dimensions the
shrinkage is what keeps the covariance estimable. ``word_probe`` is the probe for group-major
inputs (``whisper_words``): principal components of each group, then logistic regression.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from speechprint.core.errors import ConfigError
from speechprint.models.base import implements

# Its covariance is input_dim^2 float64: 16384 dimensions take 2 GiB.
LDA_MAX_DIM = 16384


class SoftmaxLinearSVC(LinearSVC):
    """LinearSVC with ``predict_proba`` from a softmax over decision scores.

    Calibration by cross-validation would need several speakers per class in training, which
    the archive's small regions do not have; a softmax keeps the ranking, which is what top-k uses.
    """

    def predict_proba(self, X: np.ndarray) -> np.ndarray:  # noqa: N803 - sklearn's name
        scores = np.atleast_2d(self.decision_function(X))
        if scores.shape[1] == 1:  # binary: one score for the positive class
            scores = np.hstack([-scores, scores])
        scores = scores - scores.max(axis=1, keepdims=True)
        exp = np.exp(scores)
        return exp / exp.sum(axis=1, keepdims=True)


class BalancedLDA(LinearDiscriminantAnalysis):
    """Shrinkage LDA with equal priors over the classes seen in training (class-balanced, as the
    objective is: a region's prior share must not decide its speakers)."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> BalancedLDA:  # noqa: N803 - sklearn's name
        n_classes = len(np.unique(y))
        self.priors = np.full(n_classes, 1.0 / n_classes)
        return super().fit(X, y)


@implements("logreg")
def build_logreg(input_dim: int, n_classes: int, C: float = 0.1) -> LogisticRegression:  # noqa: N803
    return LogisticRegression(C=C, class_weight="balanced", max_iter=3000)


@implements("linear_svm")
def build_linear_svm(input_dim: int, n_classes: int, C: float = 0.01) -> SoftmaxLinearSVC:  # noqa: N803
    return SoftmaxLinearSVC(C=C, class_weight="balanced", max_iter=5000)


@implements("lda")
def build_lda(input_dim: int, n_classes: int, shrinkage: float = 0.5) -> BalancedLDA:
    if input_dim > LDA_MAX_DIM:
        gib = input_dim**2 * 8 / 2**30
        raise ConfigError(
            f"lda on {input_dim} dimensions needs a {input_dim} x {input_dim} "
            f"covariance ({gib:.0f} GiB): give it at most {LDA_MAX_DIM}, or use "
            "word_probe (principal components by group) or logreg"
        )
    return BalancedLDA(solver="lsqr", shrinkage=shrinkage)


class GroupPCA(BaseEstimator, TransformerMixin):
    """Each of ``groups`` equal-width blocks of the input reduced to its own ``components``
    principal components (fitted on the training speakers), side by side."""

    def __init__(self, groups: int = 1, components: int = 32) -> None:
        self.groups, self.components = groups, components

    def fit(self, X: np.ndarray, y: Any = None) -> GroupPCA:  # noqa: N803 - sklearn's name
        blocks = self._blocks(X)
        k = min(self.components, X.shape[0], blocks[0].shape[1])
        self.pcas_ = [PCA(k, random_state=0).fit(block) for block in blocks]
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        return np.hstack([p.transform(b) for p, b in zip(self.pcas_, self._blocks(X), strict=True)])

    def _blocks(self, X: np.ndarray) -> list[np.ndarray]:  # noqa: N803
        if X.shape[1] % self.groups:
            raise ValueError(f"{self.groups} groups do not divide {X.shape[1]} input dimensions")
        return np.split(np.asarray(X), self.groups, axis=1)


@implements("word_probe")
def build_word_probe(
    input_dim: int, n_classes: int, layer_groups: int = 1, components: int = 32, C: float = 0.01
) -> Pipeline:  # noqa: N803
    """A linear probe on group-wise principal components: ``whisper_words``' utterance statistics
    and words each keep ``components`` directions, so no word's 512 dimensions swamp the rest and
    69 x 512 inputs fit ~900 speakers."""
    return make_pipeline(
        GroupPCA(layer_groups, components),
        StandardScaler(),
        LogisticRegression(C=C, class_weight="balanced", max_iter=3000),
    )
