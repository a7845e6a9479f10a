"""Studies end to end on the tiny corpus: real Optuna storage, real MLflow store in tmp_path."""

from __future__ import annotations

from pathlib import Path

import mlflow
import optuna
import pytest
import torch
from optuna.trial import FixedTrial, TrialState

from speechprint.models import MODELS
from speechprint.search import StudySpec, StudySpecError, run_study, suggest_config

REPO_ROOT = Path(__file__).resolve().parents[1]


# Models that misbehave on purpose, registered once for this module: a crash and a NaN loss.
class _Crash(torch.nn.Module):
    def __init__(self, input_dim: int, n_classes: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(input_dim, n_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        raise RuntimeError("deliberate crash inside the model")


class _NaN(_Crash):
    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.linear(x) * float("nan")


if "test_crash" not in MODELS:
    MODELS.register("test_crash", accepts={"pooled", "sequence"}, family="torch")(
        lambda input_dim, n_classes, **_: _Crash(input_dim, n_classes)
    )
    MODELS.register("test_nan", accepts={"pooled", "sequence"}, family="torch")(
        lambda input_dim, n_classes, **_: _NaN(input_dim, n_classes)
    )


def tiny_spec(archive: Path, *, name: str = "tiny", models: list[str] | None = None,
              n_trials: int = 3, epochs: int = 3) -> StudySpec:  # fmt: skip
    return StudySpec.from_dict(
        {
            "name": name,
            "data": {"archive": str(archive), "target": "region", "min_count": 3, "seed": 0},
            "extractors": ["mfcc_mean", "mfcc_deltas"],
            "models": models or ["logreg", "mlp", "bilstm"],
            "budget": {"n_trials": n_trials, "epochs": epochs},
            "train": {"max_frames": 100, "patience": 3},
            "sampler": {"name": "tpe", "seed": 0, "n_startup_trials": 2},
            "pruner": {"name": "none"},
        }
    )


def test_unknown_names_are_clear_errors_before_any_work(tiny_archive: Path) -> None:
    raw = {"name": "x", "data": {"archive": str(tiny_archive)}, "extractors": ["mfcc_mean"],
           "models": ["transformer9000"]}  # fmt: skip
    with pytest.raises(StudySpecError, match="unknown model 'transformer9000'.*valid names:.*mlp"):
        StudySpec.from_dict(raw)
    raw.update(models=["mlp"], extractors=["mfcc_moon"])
    with pytest.raises(StudySpecError, match="unknown extractor 'mfcc_moon'.*mfcc_mean"):
        StudySpec.from_dict(raw)
    raw.update(extractors=["mfcc_mean"], budgett={"n_trials": 3})
    with pytest.raises(StudySpecError, match="budgett"):
        StudySpec.from_dict(raw)


def test_incompatible_pairs_are_never_in_the_space(tiny_archive: Path) -> None:
    spec = tiny_spec(tiny_archive)
    pairs = spec.pairs()
    assert "mfcc_mean+bilstm" not in pairs  # a recurrent model on a pooled vector
    assert {"mfcc_mean+mlp", "mfcc_deltas+bilstm", "mfcc_deltas+logreg"} <= set(pairs)


def test_suggest_config_with_a_fixed_trial(tiny_archive: Path) -> None:
    spec = tiny_spec(tiny_archive)
    trial = optuna.trial.create_trial  # noqa: F841 - keep optuna import used
    study = optuna.create_study(direction="maximize")
    # Sample one real trial to learn the branch's parameter names, then replay it fixed.
    frozen = study.ask()
    config = suggest_config(frozen, spec)
    replay = suggest_config(FixedTrial(frozen.params), spec)
    assert replay.to_dict() == config.to_dict()
    assert config.extractor in {"mfcc_mean", "mfcc_deltas"}
    assert config.train.epochs == 3


def test_study_logs_one_parent_and_one_child_per_trial(
    tiny_archive: Path, tracking: str, cache_dir: Path
) -> None:
    spec = tiny_spec(tiny_archive, n_trials=3)
    outcome = run_study(spec, cache_dir=str(cache_dir))
    study = outcome.study
    assert outcome.ran == 3
    client = mlflow.MlflowClient(tracking)
    experiment = client.get_experiment_by_name("tiny")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("kind") == "study"]
    children = [r for r in runs if "trial_number" in r.data.tags]
    assert len(parents) == 1 and len(children) == 3
    assert parents[0].info.status == "FINISHED"
    by_number = {int(r.data.tags["trial_number"]): r for r in children}
    for trial in study.trials:
        run = by_number[trial.number]
        assert run.info.run_name == f"trial-{trial.number:04d}"
        assert run.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert trial.user_attrs["mlflow_run_id"] == run.info.run_id
        assert run.data.tags["state"] == trial.state.name
        assert run.info.status != "RUNNING"  # every child run is closed
        for tag in ("study", "extractor", "model", "git_commit", "data_fingerprint"):
            assert run.data.tags[tag]
        assert run.data.params["extractor"] == trial.user_attrs["extractor"]
        if trial.state == TrialState.COMPLETE:
            history = client.get_metric_history(run.info.run_id, "val/balanced_accuracy")
            assert len(history) >= 1
            for metric in ("train/loss", "val/loss", "val/macro_f1"):
                assert client.get_metric_history(run.info.run_id, metric)
            artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
            assert {"config.json", "confusion_val.png", "confusion_val.json", "model"} <= artifacts
            assert abs(run.data.metrics["best/val_balanced_accuracy"] - trial.value) < 1e-9


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


def test_resume_runs_only_the_missing_trials(
    tiny_archive: Path, tracking: str, cache_dir: Path
) -> None:
    spec = tiny_spec(tiny_archive, models=["logreg", "mlp"], n_trials=2, epochs=2)
    assert run_study(spec, cache_dir=str(cache_dir)).ran == 2
    assert run_study(spec, cache_dir=str(cache_dir)).ran == 0  # budget already reached
    again = run_study(spec, n_trials=3, cache_dir=str(cache_dir))
    assert again.ran == 1
    assert len(again.study.trials) == 3


def test_baselines_run_first_and_only_once(
    tiny_archive: Path, tracking: str, cache_dir: Path
) -> None:
    spec = tiny_spec(tiny_archive, models=["logreg", "mlp"], n_trials=2, epochs=2)
    spec.baselines = [{"pair": "mfcc_deltas+logreg"}]
    spec.sampler = {"name": "random", "seed": 0}
    outcome = run_study(spec, cache_dir=str(cache_dir))
    study = outcome.study
    assert study.trials[0].params["pair"] == "mfcc_deltas+logreg"
    assert outcome.ran == 2  # the queued baseline counts as a trial this call ran
    resumed = run_study(spec, n_trials=4, cache_dir=str(cache_dir))
    assert resumed.ran == 2
    again = resumed.study
    fixed = [t for t in again.trials if "fixed_params" in t.system_attrs]
    assert len(fixed) == 1  # resuming does not queue the baseline again
    bad = {"name": "x", "data": {"archive": str(tiny_archive)}, "extractors": ["mfcc_mean"],
           "models": ["mlp"], "baselines": [{"pair": "mfcc_mean+bilstm"}]}  # fmt: skip
    with pytest.raises(StudySpecError, match="baseline"):
        StudySpec.from_dict(bad)


def test_a_crashing_trial_fails_and_the_study_goes_on(
    tiny_archive: Path, tracking: str, cache_dir: Path
) -> None:
    spec = tiny_spec(tiny_archive, models=["test_crash", "test_nan", "logreg"], n_trials=6,
                     epochs=2)  # fmt: skip
    spec.sampler = {"name": "random", "seed": 3}
    outcome = run_study(spec, cache_dir=str(cache_dir))
    trials = outcome.study.trials
    failed = [t for t in trials if t.state == TrialState.FAIL]
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert failed and complete, [t.state for t in trials]
    assert all("deliberate crash" in t.user_attrs["fail_reason"] for t in failed)
    assert all(t.user_attrs["model"] == "test_nan" for t in pruned)
    assert all("loss" in t.user_attrs["prune_reason"].lower() for t in pruned)
    client = mlflow.MlflowClient(tracking)
    for trial in failed + pruned:
        run = client.get_run(trial.user_attrs["mlflow_run_id"])
        assert run.info.status == ("FAILED" if trial.state == TrialState.FAIL else "KILLED")
        assert run.data.tags["state"] == trial.state.name


@pytest.mark.parametrize(
    "path", sorted((REPO_ROOT / "studies").glob("*.yaml")), ids=lambda p: p.name
)
def test_every_shipped_study_loads_and_samples(path: Path) -> None:
    spec = StudySpec.from_yaml(path)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0))
    for _ in range(5):
        config = suggest_config(study.ask(), spec)
        assert config.model in spec.models
