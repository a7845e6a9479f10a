"""Repeated stratified k-fold scoring: how good is a configuration, with an honest interval.

At archive scale (a handful of speakers in the smallest regions) one validation split is noisy.
Here the train+val speakers are split into k stratified folds, repeated with different seeds; each
fold is scored by a model trained on the other folds, whose own early stopping uses an inner
validation split carved from its training speakers (the scored fold is never seen in training).
The test split is never used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold

from speechprint.data.dataset import Dataset
from speechprint.evaluation.metrics import bootstrap_interval, score_split
from speechprint.features import FeatureSet
from speechprint.train import RunConfig, model_seed_variants, run


@dataclass
class CVResult:
    folds: int
    repeats: int
    scores: list[float]  # balanced accuracy per fold and repeat (the mean over model seeds)
    macro_f1: list[float]
    mean: float
    std: float
    interval: tuple[float, float]  # bootstrap 95% over speakers, out-of-fold, repeats averaged
    best_epochs: list[int] = field(default_factory=list)  # early-stopping epoch of each fold run
    oof: list[dict[str, Any]] = field(default_factory=list)  # out-of-fold rows, see ``_oof_rows``
    seeds: int = 1

    @property
    def refit_epochs(self) -> int:
        """Epochs for a model refit on all development speakers: the folds' median best epoch."""
        positive = [e for e in self.best_epochs if e > 0]
        return int(np.median(positive)) if positive else 0

    def metrics(self) -> dict[str, float]:
        return {
            "cv/balanced_accuracy_mean": self.mean,
            "cv/balanced_accuracy_std": self.std,
            "cv/balanced_accuracy_ci_low": self.interval[0],
            "cv/balanced_accuracy_ci_high": self.interval[1],
            "cv/macro_f1_mean": float(np.mean(self.macro_f1)),
            "cv/refit_epochs": float(self.refit_epochs),
        }


def fold_datasets(dataset: Dataset, folds: int, repeats: int, seed: int) -> list[Dataset]:
    """One Dataset per fold: the fold is "test", an inner 15% of the rest "val", the rest "train".

    Folds whose smallest class cannot fill k folds shrink k (with a clear floor of 2).
    """
    pool = dataset.manifest[dataset.manifest["split"] != "test"].reset_index(drop=True)
    speakers = pool.groupby("speakerid", sort=True)["y"].first()
    smallest = int(np.bincount(speakers.to_numpy()).min())
    k = max(2, min(folds, smallest))
    out = []
    for repeat in range(repeats):
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed + repeat)
        for fold, (rest, held) in enumerate(splitter.split(speakers.index, speakers.to_numpy())):
            rng = np.random.default_rng(seed + 1000 * repeat + fold)
            split_of = {s: "test" for s in speakers.index[held]}
            rest_speakers = speakers.iloc[rest]
            for label in np.unique(rest_speakers.to_numpy()):
                members = np.array(rest_speakers.index[rest_speakers.to_numpy() == label])
                rng.shuffle(members)
                n_val = max(1, int(round(0.15 * len(members)))) if len(members) > 1 else 0
                for i, speaker in enumerate(members):
                    split_of[speaker] = "val" if i < n_val else "train"
            # with_manifest: the one way a dataset is re-fingerprinted (the region table too).
            out.append(dataset.with_manifest(pool.assign(split=pool["speakerid"].map(split_of))))
    return out


def cross_validate(
    config: RunConfig,
    data: tuple[Dataset, FeatureSet],
    *,
    folds: int = 5,
    repeats: int = 2,
    seeds: int = 1,
    report: Any = None,
) -> CVResult:
    """Score ``config`` by repeated stratified k-fold on the train+val speakers.

    Each fold trains ``seeds`` models (``train.model_seed_variants``: one for a deterministic
    scikit-learn fit; the folds stay the same) and averages their probabilities.
    ``report(fold, running_mean)`` is called after each fold, so a pruner can stop a hopeless
    configuration after one or two folds.
    """
    dataset, features = data
    variants = model_seed_variants(config.model_copy(update={"evaluate_test": True}), seeds)
    scores, f1s, epochs, rows = [], [], [], []
    splits = fold_datasets(dataset, folds, repeats, config.seed)
    k = len(splits) // repeats
    for index, fold in enumerate(splits):
        test, fold_epochs = _score_fold(variants, fold, features)
        scores.append(float(test["balanced_accuracy"]))
        f1s.append(float(test["macro_f1"]))
        epochs += fold_epochs
        rows += _oof_rows(test, fold, repeat=index // k, fold_index=index % k)
        if report is not None:
            report(index + 1, float(np.mean(scores)))
    return CVResult(
        folds=k,
        repeats=repeats,
        scores=scores,
        macro_f1=f1s,
        mean=float(np.mean(scores)),
        std=float(np.std(scores)),
        interval=_speaker_interval(rows),
        best_epochs=epochs,
        oof=rows,
        seeds=len(variants),
    )


def _score_fold(
    variants: list[RunConfig], fold: Dataset, features: FeatureSet
) -> tuple[dict[str, Any], list[int]]:
    """The fold's held-out metrics (probabilities averaged over model seeds), best epochs."""
    tests, epochs = [], []
    for seeded in variants:
        result = run(seeded, (fold, features))
        tests.append(result.test or {})
        epochs.append(int(result.best_epoch))
    if len(tests) == 1:
        return tests[0], epochs
    proba = np.mean([t["proba"] for t in tests], axis=0)
    first = tests[0]
    counts = fold.class_counts("train")
    merged = score_split(first["y_true"], proba, first["labels"], train_counts=counts)
    return {**first, **merged}, epochs


def _oof_rows(
    test: dict[str, Any], fold: Dataset, *, repeat: int, fold_index: int
) -> list[dict[str, Any]]:
    """One row per held-out recording: where it was scored and what the model said."""
    speaker_of = dict(zip(fold.manifest["path"], fold.manifest["speakerid"]))
    return [
        {
            "repeat": repeat,
            "fold": fold_index,
            "path": path,
            "speakerid": str(speaker_of[path]),
            "y_true": int(y),
            "proba": proba,
        }
        for path, y, proba in zip(test["files"], test["y_true"], test["proba"])
    ]


def _speaker_interval(rows: list[dict[str, Any]]) -> tuple[float, float]:
    """Bootstrap over speakers of their out-of-fold probabilities averaged across repeats
    (resampling rows would count each speaker once per repeat)."""
    by_speaker: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_speaker.setdefault(row["speakerid"], []).append(row)
    truth = [group[0]["y_true"] for group in by_speaker.values()]
    predicted = [
        int(np.argmax(np.mean([r["proba"] for r in group], axis=0)))
        for group in by_speaker.values()
    ]
    return bootstrap_interval(truth, predicted)
