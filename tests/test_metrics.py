"""Metrics on hand-computed examples."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from speechprint.evaluation.metrics import bootstrap_interval, evaluate, plot_confusion


def one_hot(pred: list[int], n: int) -> np.ndarray:
    proba = np.full((len(pred), n), 0.1 / (n - 1))
    proba[np.arange(len(pred)), pred] = 0.9
    return proba


def test_balanced_accuracy_and_baselines_by_hand() -> None:
    # 4 of class a (3 right), 2 of class b (1 right), 1 of class c (wrong).
    y = [0, 0, 0, 0, 1, 1, 2]
    pred = [0, 0, 0, 1, 1, 0, 0]
    m = evaluate(y, one_hot(pred, 3), ["a", "b", "c"], train_counts={"a": 10, "b": 3, "c": 2})
    assert m["accuracy"] == pytest.approx(4 / 7)
    assert m["balanced_accuracy"] == pytest.approx((3 / 4 + 1 / 2 + 0) / 3)
    assert m["per_class_recall"] == {"a": 0.75, "b": 0.5, "c": 0.0}
    assert m["confusion"] == [[3, 1, 0], [1, 1, 0], [1, 0, 0]]
    assert m["confusion_normalized"][0] == [0.75, 0.25, 0.0]
    assert m["chance"] == pytest.approx(1 / 3)
    assert m["majority_baseline"] == {
        "label": "a",
        "accuracy": pytest.approx(4 / 7),
        "balanced_accuracy": pytest.approx(1 / 3),
    }


def test_chance_is_a_uniform_guess_over_the_models_classes_on_a_one_label_corpus() -> None:
    """speechocean762's speakers all carry one of a 17-region model's labels: a uniform guess
    recalls that class 1/17 of the time, so chance is 1/17 (it was printed as 1.000)."""
    rng = np.random.default_rng(0)
    guesses = rng.integers(0, 17, size=20000)
    m = evaluate(np.zeros(20000, dtype=int), one_hot(guesses, 17), [f"r{i}" for i in range(17)])
    assert m["chance"] == pytest.approx(1 / 17)
    assert m["balanced_accuracy"] == pytest.approx(m["chance"], abs=0.01)


def test_top3_accuracy() -> None:
    proba = np.array([[0.5, 0.3, 0.15, 0.05], [0.5, 0.3, 0.15, 0.05]])
    m = evaluate([2, 3], proba, list("abcd"))
    assert m["top3_accuracy"] == 0.5 and m["accuracy"] == 0.0


def test_bootstrap_interval_contains_estimate_and_narrows() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 400)
    pred = np.where(rng.random(400) < 0.6, y, rng.integers(0, 4, 400))
    m = evaluate(y, one_hot(list(pred), 4), list("abcd"))
    low, high = bootstrap_interval(y, pred)
    assert low < m["balanced_accuracy"] < high
    small_low, small_high = bootstrap_interval(y[:50], pred[:50])
    assert (small_high - small_low) > (high - low)
    assert bootstrap_interval(y, pred, seed=1) != (low, high)


def test_confusion_figure() -> None:
    figure = plot_confusion([[3, 1], [0, 2]], ["a", "b"], normalized=True, title="val")
    assert "row-normalised" in figure.axes[0].get_title()


def test_paired_bootstrap_on_cases_with_known_answers() -> None:
    from speechprint.evaluation.metrics import paired_bootstrap

    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, size=200)
    same = paired_bootstrap(truth, truth, truth)
    assert (same.difference, same.low, same.high) == (0.0, 0.0, 0.0)
    assert not same.distinguishable and "not distinguishable" in same.verdict()
    # B is A with 40 of 200 answers flipped to wrong: A is better by a known margin.
    wrong = truth.copy()
    flipped = rng.choice(200, size=40, replace=False)
    wrong[flipped] = (truth[flipped] + 1) % 4
    better = paired_bootstrap(truth, truth, wrong)
    assert better.difference == pytest.approx(1 - balanced_accuracy_score(truth, wrong))
    assert 0 < better.low <= better.difference <= better.high
    assert better.distinguishable and "A is better" in better.verdict()
    # Two equally noisy, independent models: the difference is near zero and not distinguishable.
    a, b = truth.copy(), truth.copy()
    a[rng.choice(200, 60, replace=False)] = rng.integers(0, 4, 60)
    b[rng.choice(200, 60, replace=False)] = rng.integers(0, 4, 60)
    noisy = paired_bootstrap(truth, a, b)
    assert noisy.low < 0 < noisy.high
    # Pairing narrows the interval compared with two unpaired intervals.
    low_a, high_a = bootstrap_interval(truth, a)
    assert noisy.high - noisy.low < 2 * (high_a - low_a)
