"""One ``score_split`` for every split's record; an ensemble's baseline comes from training."""

from __future__ import annotations

import numpy as np

from speechprint.evaluation.metrics import evaluate, score_split
from speechprint.evaluation.units import speaker_metrics
from speechprint.release.candidates import averaged_test

LABELS = ["a", "b"]
TRAIN = {"a": 30, "b": 10}  # training majority: a
Y_TEST = [1, 1, 1, 0]  # test majority: b
FILES = ["s1.wav", "s2.wav", "s3.wav", "s4.wav"]


def _member(proba: list[list[float]]) -> dict:
    return score_split(Y_TEST, np.array(proba), LABELS, train_counts=TRAIN, files=FILES)


def test_a_record_holds_every_metric_of_evaluate_and_the_rows_behind_them() -> None:
    proba = np.array([[0.2, 0.8], [0.6, 0.4], [0.1, 0.9], [0.7, 0.3]])
    record = score_split(Y_TEST, proba, LABELS, train_counts=TRAIN, files=FILES)
    assert set(evaluate(Y_TEST, proba, LABELS, train_counts=TRAIN)) <= set(record)
    assert record["y_true"] == Y_TEST and record["y_pred"] == [1, 0, 1, 0]
    assert record["files"] == FILES and len(record["proba"]) == 4
    low, high = record["balanced_accuracy_ci"]
    assert low <= record["balanced_accuracy"] <= high
    assert record["majority_baseline"]["label"] == "a"


def test_an_ensembles_majority_baseline_comes_from_training_not_from_the_test_labels() -> None:
    members = [
        _member([[0.2, 0.8], [0.6, 0.4], [0.1, 0.9], [0.7, 0.3]]),
        _member([[0.4, 0.6], [0.3, 0.7], [0.2, 0.8], [0.9, 0.1]]),
    ]
    test = averaged_test(members)
    assert test["majority_baseline"]["label"] == "a"  # the test labels' majority is b
    assert test["majority_baseline"]["accuracy"] == 0.25
    assert test["files"] == FILES and test["y_pred"] == [1, 1, 1, 0]


def test_records_written_before_train_counts_were_kept_still_give_the_training_majority() -> None:
    old = _member([[0.2, 0.8], [0.6, 0.4], [0.1, 0.9], [0.7, 0.3]])
    del old["train_counts"]
    assert averaged_test([old, old])["majority_baseline"]["label"] == "a"


def test_speakers_are_scored_against_the_training_counts_too() -> None:
    clip = _member([[0.2, 0.8], [0.6, 0.4], [0.1, 0.9], [0.7, 0.3]])
    speaker = speaker_metrics(clip, ["p1", "p1", "p2", "p3"], TRAIN)
    assert speaker["speakers"] == ["p1", "p2", "p3"]
    assert speaker["majority_baseline"]["label"] == "a"
