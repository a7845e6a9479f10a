"""The experiment tags SpeechPrint declares, and its MLflow UI link, on a real SQLite store."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from speechprint.tracking import store as sp_tracking
from speechprint.train.cv import CVResult
from speechprint.train.evaluate import log_best

PRIMARY = "mlflow.experiment.primaryMetric.name"


def test_the_declared_primary_metric_is_what_each_trial_logs_as_its_objective(
    tracking: str,
) -> None:
    client = sp_tracking.client()
    plain = sp_tracking.MLflowTracker.start(client, "plain", run_name="trial-0000")
    log_best(
        plain,
        {
            "balanced_accuracy": 0.6,
            "balanced_accuracy_ci": (0.5, 0.7),
            "macro_f1": 0.55,
            "accuracy": 0.6,
        },
        best_epoch=3,
    )
    folds = CVResult(
        folds=2,
        repeats=1,
        scores=[0.5, 0.7],
        macro_f1=[0.4, 0.6],
        mean=0.6,
        std=0.1,
        interval=(0.5, 0.7),
    )
    cv = sp_tracking.MLflowTracker.start(
        client, "cv", run_name="trial-0000", primary_metric=sp_tracking.CV_METRIC
    )
    cv.log_metrics(folds.metrics())
    for run, cross_validated in ((plain, False), (cv, True)):
        logged = client.get_run(run.run_id).data.metrics
        metric = sp_tracking.objective_metric(cross_validated=cross_validated)
        assert logged[metric] == pytest.approx(0.6)
        experiment = client.get_experiment(client.get_run(run.run_id).info.experiment_id)
        assert experiment.tags[PRIMARY] == metric
    # The per-epoch curve is the torch loop's only: a scikit-learn trial never logs it.
    assert "val/balanced_accuracy" not in client.get_run(plain.run_id).data.metrics


def test_new_experiments_are_marked_as_model_training(tracking: str) -> None:
    client = sp_tracking.client()
    tags = client.get_experiment(sp_tracking.experiment_id(client, "fixed")).tags
    assert tags["mlflow.experimentKind"] == "custom_model_development"
    assert tags[PRIMARY] == "best/val_balanced_accuracy"
    assert tags["mlflow.experiment.primaryMetric.greaterIsBetter"] == "true"


def test_a_parent_run_redeclares_the_metric_of_an_existing_experiment(tracking: str) -> None:
    client = sp_tracking.client()
    first = sp_tracking.MLflowTracker.start(client, "study", run_name="study-1")
    sp_tracking.MLflowTracker.start(
        client, "study", run_name="trial-0000", parent_run_id=first.run_id
    )
    experiment = client.get_experiment_by_name("study")
    assert experiment.tags[PRIMARY] == "best/val_balanced_accuracy"
    # The same study, now scored by k-fold: its next parent run declares the k-fold mean, and
    # trial runs (no metric given) leave the declaration alone.
    second = sp_tracking.MLflowTracker.start(
        client, "study", run_name="study-2", primary_metric=sp_tracking.CV_METRIC
    )
    sp_tracking.MLflowTracker.start(
        client, "study", run_name="trial-0001", parent_run_id=second.run_id
    )
    assert client.get_experiment(experiment.experiment_id).tags[PRIMARY] == sp_tracking.CV_METRIC


@pytest.mark.parametrize("metric", ["best/val_balanced_accuracy", "cv/balanced_accuracy_mean"])
def test_the_ui_link_opens_the_runs_table_sorted_by_the_metric(metric: str) -> None:
    parts = urlsplit(sp_tracking.ui_link("http://127.0.0.1:5000/", "7", metric))
    assert parts.path == "/" and parts.fragment.startswith("/experiments/7/runs?")
    query = parse_qs(parts.fragment.split("?", 1)[1])
    assert query == {
        "workflowType": ["machine_learning"],
        "orderByKey": [f"metrics.`{metric}`"],
        "orderByAsc": ["false"],
    }
