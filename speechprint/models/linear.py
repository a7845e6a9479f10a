"""Linear baselines (scikit-learn) registered as models, so studies compare deep against linear.

All are class-balanced. Sequence features reach them as mean+std statistics (a linear probe).
``lda`` is the Gaussian back-end of language and speaker recognition (shared covariance, shrunk
towards the diagonal, equal priors): with ~50 speakers per region and 1,000+ dimensions the
shrinkage is what keeps the covariance estimable.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

from speechprint.models.base import MODELS


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


def logreg_space(trial: Any) -> dict[str, Any]:
    return {"C": trial.suggest_float("logreg.C", 1e-3, 10.0, log=True)}


def svm_space(trial: Any) -> dict[str, Any]:
    return {"C": trial.suggest_float("linear_svm.C", 1e-4, 1.0, log=True)}


@MODELS.register("logreg", space=logreg_space, accepts={"pooled"}, family="sklearn")
def build_logreg(input_dim: int, n_classes: int, C: float = 0.1) -> LogisticRegression:  # noqa: N803
    return LogisticRegression(C=C, class_weight="balanced", max_iter=3000)


@MODELS.register("linear_svm", space=svm_space, accepts={"pooled"}, family="sklearn")
def build_linear_svm(input_dim: int, n_classes: int, C: float = 0.01) -> SoftmaxLinearSVC:  # noqa: N803
    return SoftmaxLinearSVC(C=C, class_weight="balanced", max_iter=5000)


def lda_space(trial: Any) -> dict[str, Any]:
    return {"shrinkage": trial.suggest_float("lda.shrinkage", 0.05, 0.95)}


@MODELS.register("lda", space=lda_space, accepts={"pooled"}, family="sklearn")
def build_lda(input_dim: int, n_classes: int, shrinkage: float = 0.5) -> BalancedLDA:
    return BalancedLDA(solver="lsqr", shrinkage=shrinkage)
