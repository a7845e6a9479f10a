"""Evidence for choosing between models without spending the test split.

- ``Selection``: what a study chose a trial by (its cross-validated mean, or its validation score),
  with the interval and a key that says when two selections are comparable (same metric, same data).
- Out-of-fold predictions of cross-validated trials (logged as an artifact of each trial run), for
  paired comparisons of two trials and for scoring an ensemble of trials on the same folds.
- Paired bootstrap differences on the same speakers (``metrics.paired_bootstrap``).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from speechprint.core.errors import ConfigError
from speechprint.evaluation.metrics import (
    PairedDifference,
    bootstrap_interval,
    evaluate,
    paired_bootstrap,
)

OOF_ARTIFACT = "oof_predictions.json"
LINEAR_MODELS = ("logreg", "linear_svm", "lda")


@dataclass(frozen=True)
class Selection:
    """The score a candidate was chosen by; never a test score."""

    metric: str  # e.g. "cv 5x2 balanced accuracy" or "validation balanced accuracy"
    score: float
    low: float
    high: float
    fingerprint: str  # the data it was measured on

    def comparable(self, other: Selection) -> bool:
        return (self.metric, self.fingerprint) == (other.metric, other.fingerprint)

    def describe(self) -> str:
        return f"{self.metric} {self.score:.3f} [95% CI {self.low:.3f}-{self.high:.3f}]"

    def as_tags(self) -> dict[str, str]:
        return {
            "selection_metric": self.metric,
            "selection_score": f"{self.score:.6f}",
            "selection_ci95": f"{self.low:.4f}-{self.high:.4f}",
        }

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> Selection | None:
        if "selection_metric" not in tags:
            return None
        low, _, high = tags.get("selection_ci95", "nan-nan").partition("-")
        return cls(
            tags["selection_metric"],
            float(tags["selection_score"]),
            float(low),
            float(high),
            tags.get("data_fingerprint", ""),
        )


def selection_of(trial: optuna.trial.FrozenTrial) -> Selection:
    """How the study scored ``trial``: its k-fold mean when it was cross-validated."""
    attrs = trial.user_attrs
    fingerprint = str(attrs.get("data_fingerprint", ""))
    if "cv_balanced_accuracy_mean" in attrs:
        folds, repeats = attrs.get("cv_folds", "k"), attrs.get("cv_repeats", "")
        metric = f"cv {folds}x{repeats} balanced accuracy".replace("x ", " ")
        return Selection(
            metric,
            float(attrs["cv_balanced_accuracy_mean"]),
            float(attrs["cv_balanced_accuracy_ci_low"]),
            float(attrs["cv_balanced_accuracy_ci_high"]),
            fingerprint,
        )
    low, high = attrs.get("val_balanced_accuracy_ci", (float("nan"), float("nan")))
    return Selection(
        "validation balanced accuracy",
        float(trial.value or 0.0),
        float(low),
        float(high),
        fingerprint,
    )


def download_json(client: Any, run_id: str, artifact: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        record: dict[str, Any] = json.loads(
            Path(client.download_artifacts(run_id, artifact, tmp)).read_text()
        )
    return record


def oof_rows(client: Any, trial: optuna.trial.FrozenTrial) -> list[dict[str, Any]]:
    """A cross-validated trial's out-of-fold rows (``repeat, fold, path, speakerid, y_true,
    proba``); a ``ConfigError`` for a trial that was not cross-validated."""
    run_id = trial.user_attrs.get("mlflow_run_id")
    if "cv_balanced_accuracy_mean" not in trial.user_attrs or not run_id:
        raise ConfigError(
            f"trial {trial.number} was not cross-validated: no out-of-fold "
            "predictions (set cv: in the study file)"
        )
    rows: list[dict[str, Any]] = download_json(client, run_id, OOF_ARTIFACT)["rows"]
    return rows


def per_speaker(rows: list[dict[str, Any]]) -> dict[str, tuple[int, np.ndarray]]:
    """Out-of-fold probabilities averaged over repeats, per speaker: ``{speaker: (y, proba)}``."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row["speakerid"], []).append(row)
    return {
        speaker: (group[0]["y_true"], np.mean([r["proba"] for r in group], axis=0))
        for speaker, group in grouped.items()
    }


def paired_oof(rows_a: list[dict[str, Any]], rows_b: list[dict[str, Any]]) -> PairedDifference:
    """A minus B on the development speakers both were scored on (out of fold)."""
    a, b = per_speaker(rows_a), per_speaker(rows_b)
    speakers = sorted(set(a) & set(b))
    truth = [a[s][0] for s in speakers]
    return paired_bootstrap(
        truth,
        [int(np.argmax(a[s][1])) for s in speakers],
        [int(np.argmax(b[s][1])) for s in speakers],
    )


def ensemble_selection(
    members: list[list[dict[str, Any]]], labels: list[str], template: Selection
) -> Selection:
    """An ensemble's cross-validated score: the members' out-of-fold probabilities averaged on
    each fold, scored like a single trial's folds (mean over folds), with its speaker interval."""
    keyed = [{(r["repeat"], r["fold"], r["path"]): r for r in rows} for rows in members]
    common = sorted(set.intersection(*(set(k) for k in keyed)))
    averaged = [
        {**keyed[0][key], "proba": np.mean([k[key]["proba"] for k in keyed], axis=0)}
        for key in common
    ]
    folds: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for row in averaged:
        folds.setdefault((row["repeat"], row["fold"]), []).append(row)
    scores = [
        evaluate([r["y_true"] for r in rows], np.stack([r["proba"] for r in rows]), labels)[
            "balanced_accuracy"
        ]
        for rows in folds.values()
    ]
    speakers = per_speaker(averaged)
    low, high = bootstrap_interval(
        [y for y, _ in speakers.values()], [int(np.argmax(p)) for _, p in speakers.values()]
    )
    return Selection(template.metric, float(np.mean(scores)), low, high, template.fingerprint)


def linear_baseline(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The study's linear baseline: its first queued baseline with a linear model, else its best
    linear trial (what every deeper model must beat)."""
    complete = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.state == optuna.trial.TrialState.COMPLETE
        and t.user_attrs.get("model") in LINEAR_MODELS
    ]
    queued = [t for t in complete if "fixed_params" in t.system_attrs]
    if queued:
        return min(queued, key=lambda t: t.number)
    return max(complete, key=lambda t: t.value or 0.0, default=None)


def paired_on_test(ours: dict[str, Any], theirs: dict[str, Any]) -> PairedDifference:
    """Ours minus theirs on the test files both predicted (aligned by file)."""
    their_pred = dict(zip(theirs["files"], theirs["y_pred"]))
    rows = [
        (t, p, their_pred[f])
        for f, t, p in zip(ours["files"], ours["y_true"], ours["y_pred"])
        if f in their_pred
    ]
    truth, a, b = (list(column) for column in zip(*rows)) if rows else ([], [], [])
    return paired_bootstrap(truth, a, b)
