"""Repeated stratified k-fold scoring: how good is a configuration, with an honest interval.

At archive scale (a handful of speakers in the smallest regions) one validation split is noisy.
Here the train+val speakers are split into k stratified folds, repeated with different seeds; each
fold is scored by a model trained on the other folds, whose own early stopping uses an inner
validation split carved from its training speakers (the scored fold is never seen in training).
The test split is never used.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold

from speechprint.data.dataset import Dataset, fingerprint
from speechprint.features import FeatureSet
from speechprint.metrics import bootstrap_interval
from speechprint.train import RunConfig, run


@dataclass
class CVResult:
    folds: int
    repeats: int
    scores: list[float]  # balanced accuracy per fold and repeat
    macro_f1: list[float]
    mean: float
    std: float
    interval: tuple[float, float]  # bootstrap 95% over pooled out-of-fold predictions

    def metrics(self) -> dict[str, float]:
        return {
            "cv/balanced_accuracy_mean": self.mean,
            "cv/balanced_accuracy_std": self.std,
            "cv/balanced_accuracy_ci_low": self.interval[0],
            "cv/balanced_accuracy_ci_high": self.interval[1],
            "cv/macro_f1_mean": float(np.mean(self.macro_f1)),
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
            manifest = pool.assign(split=pool["speakerid"].map(split_of))
            out.append(dataclasses.replace(dataset, manifest=manifest,
                                           fingerprint=fingerprint(manifest, dataset.target)))  # fmt: skip
    return out


def cross_validate(
    config: RunConfig,
    data: tuple[Dataset, FeatureSet],
    *,
    folds: int = 5,
    repeats: int = 2,
    report: Any = None,
) -> CVResult:
    """Score ``config`` by repeated stratified k-fold on the train+val speakers."""
    dataset, features = data
    scores, f1s, truth, predicted = [], [], [], []
    fold_config = config.model_copy(update={"evaluate_test": True})
    for index, fold in enumerate(fold_datasets(dataset, folds, repeats, config.seed)):
        result = run(fold_config, (fold, features))
        test = result.test or {}
        scores.append(float(test["balanced_accuracy"]))
        f1s.append(float(test["macro_f1"]))
        truth += test["y_true"]
        predicted += test["y_pred"]
        if report is not None:
            report(index + 1, float(np.mean(scores)))
    return CVResult(
        folds=len(scores) // repeats,
        repeats=repeats,
        scores=scores,
        macro_f1=f1s,
        mean=float(np.mean(scores)),
        std=float(np.std(scores)),
        interval=bootstrap_interval(truth, predicted),
    )
