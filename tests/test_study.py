"""Studies end to end on the tiny corpus: real Optuna storage, real MLflow store in tmp_path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import pytest
from optuna.trial import TrialState

from speechprint.catalogue.models import family
from speechprint.core.errors import SpeechPrintError
from speechprint.study.runner import run_study
from speechprint.study.spec import StudySpec


def tiny_spec(
    archive: Path,
    *,
    name: str = "tiny",
    models: list[str] | None = None,
    n_trials: int = 3,
    epochs: int = 3,
    **changes: Any,
) -> StudySpec:
    raw = {
        "name": name,
        "data": {"archive": str(archive), "target": "region", "min_count": 3, "seed": 0},
        "extractors": ["mfcc_mean", "mfcc_deltas"],
        "models": models or ["logreg", "mlp", "bilstm"],
        "budget": {"n_trials": n_trials},
        "train": {"epochs": epochs, "max_frames": 100, "patience": 3},
        "sampler": {"name": "tpe", "seed": 0, "n_startup_trials": 2},
        "pruner": {"name": "none"},
    }
    return StudySpec.from_dict({**raw, **changes})


def study_runs(tracking: str, name: str) -> tuple[list[Any], list[Any]]:
    """The study's parent runs and trial runs in the MLflow store."""
    client = mlflow.MlflowClient(tracking)
    experiment = client.get_experiment_by_name(name)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("kind") == "study"]
    return parents, [r for r in runs if "trial_number" in r.data.tags]


def test_study_logs_one_parent_and_one_child_per_trial(
    tiny_archive: Path, tracking: str, cache_dir: Path
) -> None:
    # A labelled extractor names its pairs and trial runs by its label.
    extractors = ["mfcc_mean", {"name": "mfcc_deltas", "label": "deltas"}]
    spec = tiny_spec(tiny_archive, n_trials=3, extractors=extractors)
    outcome = run_study(spec, cache_dir=str(cache_dir))
    study = outcome.study
    assert outcome.ran == 3
    client = mlflow.MlflowClient(tracking)
    parents, children = study_runs(tracking, "tiny")
    assert len(parents) == 1 and len(children) == 3
    assert parents[0].info.status == "FINISHED"
    experiment = client.get_experiment_by_name("tiny")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    by_number = {int(r.data.tags["trial_number"]): r for r in children}
    for trial in study.trials:
        run = by_number[trial.number]
        key = "deltas" if trial.user_attrs["extractor"] == "mfcc_deltas" else "mfcc_mean"
        assert trial.user_attrs["pair"] == f"{key}+{trial.user_attrs['model']}"
        assert run.info.run_name == f"trial-{trial.number:04d} {trial.user_attrs['pair']}"
        assert run.data.tags["extractor_label"] == key  # what `runs compare` lists
        assert run.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert trial.user_attrs["mlflow_run_id"] == run.info.run_id
        assert run.data.tags["state"] == trial.state.name
        assert run.info.status != "RUNNING"  # every child run is closed
        for tag in ("study", "extractor", "model", "git_commit", "data_fingerprint", "regions"):
            assert run.data.tags[tag]
        assert run.data.params["extractor"] == trial.user_attrs["extractor"]
        if trial.state == TrialState.COMPLETE:
            if family(trial.user_attrs["model"]) == "torch":  # a history per epoch
                assert client.get_metric_history(run.info.run_id, "val/balanced_accuracy")
            artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
            assert {"config.json", "confusion_val.png", "confusion_val.json", "model"} <= artifacts
            assert abs(run.data.metrics["best/val_balanced_accuracy"] - trial.value) < 1e-9


@pytest.mark.slow
def test_logged_model_loads_back_and_predicts_any_length(
    tiny_archive: Path, tracking: str, cache_dir: Path
) -> None:
    spec = tiny_spec(tiny_archive, models=["bilstm"], n_trials=1, epochs=2)
    outcome = run_study(spec, cache_dir=str(cache_dir))
    run_id = outcome.study.best_trial.user_attrs["mlflow_run_id"]
    model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    recordings = sorted((tiny_archive / "recordings").iterdir())[:2]
    frame = model.predict([str(p) for p in recordings])
    assert list(frame["error"]) == ["", ""]
    assert all(abs(sum(p.values()) - 1) < 1e-4 for p in frame["probabilities"])


@pytest.mark.slow
def test_resume_runs_only_the_missing_trials(
    tiny_archive: Path, tracking: str, cache_dir: Path
) -> None:
    spec = tiny_spec(tiny_archive, models=["logreg", "mlp"], n_trials=2, epochs=2)
    assert run_study(spec, cache_dir=str(cache_dir)).ran == 2
    assert run_study(spec, cache_dir=str(cache_dir)).ran == 0  # budget already reached
    again = run_study(spec, n_trials=3, cache_dir=str(cache_dir))
    assert again.ran == 1
    assert len(again.study.trials) == 3


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2], ids=["serial", "two-workers"])
def test_baselines_run_first_once_and_count_as_run(
    tiny_archive: Path, tracking: str, cache_dir: Path, workers: int
) -> None:
    """The serial runner and the workers count a queued baseline alike (they once drifted)."""
    spec = tiny_spec(
        tiny_archive,
        models=["logreg", "mlp"],
        n_trials=2,
        epochs=2,
        baselines=[{"pair": "mfcc_deltas+logreg"}],
        sampler={"name": "random", "seed": 0},
    )
    outcome = run_study(spec, cache_dir=str(cache_dir), workers=workers)
    study = outcome.study
    assert study.trials[0].params["pair"] == "mfcc_deltas+logreg"
    assert outcome.ran == 2  # the queued baseline is one of the two trials this call ran
    if workers == 1:
        resumed = run_study(spec, n_trials=4, cache_dir=str(cache_dir))
        assert resumed.ran == 2
        fixed = [t for t in resumed.study.trials if "fixed_params" in t.system_attrs]
        assert len(fixed) == 1  # resuming does not queue the baseline again


def test_an_error_inside_the_session_ends_the_parent_run_failed(
    tiny_archive: Path, tmp_path: Path, tracking: str
) -> None:
    """The parent run once closed FINISHED whatever went wrong after the study was created."""
    # The data checks pass; the extractor finds no model when it first extracts, in the session.
    missing = tmp_path / "no-whisper-here"
    extractors = [{"name": "whisper_encoder", "params": {"model_path": str(missing)}}]
    spec = tiny_spec(tiny_archive, name="broken", extractors=extractors, models=["bilstm"])
    with pytest.raises(SpeechPrintError):
        run_study(spec, cache_dir=str(tmp_path / "cache"))
    parents, children = study_runs(tracking, "broken")
    assert len(parents) == 1 and not children
    assert parents[0].info.status == "FAILED"
    assert str(missing) in parents[0].data.tags["fail_reason"]


def test_a_cross_validated_study_logs_its_best_under_the_declared_metric(
    tiny_archive: Path, tracking: str, cache_dir: Path
) -> None:
    spec = tiny_spec(
        tiny_archive, models=["logreg"], extractors=["mfcc_mean"], n_trials=1, cv={"folds": 2}
    )
    outcome = run_study(spec, cache_dir=str(cache_dir))
    client = mlflow.MlflowClient(tracking)
    primary = client.get_experiment_by_name("tiny").tags["mlflow.experiment.primaryMetric.name"]
    assert primary == "cv/balanced_accuracy_mean"
    (parent,), _ = study_runs(tracking, "tiny")
    assert parent.data.metrics[primary] == pytest.approx(outcome.study.best_value)
    assert "best/val_balanced_accuracy" not in parent.data.metrics


def test_crashing_and_nan_trials_fail_and_prune_and_the_study_goes_on(
    tiny_archive: Path, tracking: str, cache_dir: Path, misbehaving_models: tuple[str, str]
) -> None:
    crash, nan = misbehaving_models
    spec = tiny_spec(
        tiny_archive,
        models=[crash, nan, "logreg"],
        n_trials=3,
        epochs=2,
        baselines=[
            {"pair": f"mfcc_mean+{nan}"},
            {"pair": f"mfcc_mean+{crash}"},
            {"pair": "mfcc_mean+logreg"},
        ],
    )
    outcome = run_study(spec, cache_dir=str(cache_dir))
    states = {t.user_attrs["model"]: t for t in outcome.study.trials}
    assert states[nan].state == TrialState.PRUNED
    assert "non-finite" in states[nan].user_attrs["prune_reason"]
    assert states[crash].state == TrialState.FAIL
    assert "deliberate crash" in states[crash].user_attrs["fail_reason"]
    assert states["logreg"].state == TrialState.COMPLETE  # the study went on
    client = mlflow.MlflowClient(tracking)
    for trial, status in ((states[nan], "KILLED"), (states[crash], "FAILED")):
        run = client.get_run(trial.user_attrs["mlflow_run_id"])
        assert run.info.status == status
        assert run.data.tags["state"] == trial.state.name


@pytest.mark.slow
def test_the_median_pruner_stops_hopeless_trials(
    tiny_archive: Path, tracking: str, cache_dir: Path
) -> None:
    """A good MLP first, then MLPs that cannot learn (a learning rate of 1e-7): pruned."""
    good = {"pair": "mfcc_deltas+mlp", "train.lr": 3e-3, "mlp.dropout": 0.0}
    hopeless = {"pair": "mfcc_deltas+mlp", "train.lr": 1e-7, "mlp.dropout": 0.0}
    spec = tiny_spec(
        tiny_archive,
        models=["mlp"],
        n_trials=5,
        epochs=6,
        train={"epochs": 6, "patience": 6, "scheduler": "none"},
        space={"train.lr": {"low": 1e-7, "high": 1e-2}, "train.imbalance": "weighted"},
        baselines=[good, good, hopeless, hopeless, hopeless],
        pruner={"name": "median", "n_startup_trials": 2, "n_warmup_steps": 1},
    )
    outcome = run_study(spec, cache_dir=str(cache_dir))
    trials = outcome.study.trials
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned, [(t.number, t.state, t.intermediate_values) for t in trials]
    assert {t.number for t in pruned} <= {2, 3, 4}  # only hopeless trials
    assert [t.state for t in trials[:2]] == [TrialState.COMPLETE] * 2
    assert all("below the median of earlier trials" in t.user_attrs["prune_reason"] for t in pruned)
    assert all(len(t.intermediate_values) < 6 for t in pruned)  # stopped early
    _, children = study_runs(tracking, "tiny")
    assert all(r.info.status != "RUNNING" for r in children)
    assert {r.info.status for r in children if r.data.tags["state"] == "PRUNED"} == {"KILLED"}
