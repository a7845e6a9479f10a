"""A study remembers what it was created from: an edited study file or another archive is refused
before any trial, run or feature, and ``--new-version`` starts a version beside it."""

from __future__ import annotations

import shutil
from pathlib import Path

import mlflow
import pytest
from test_study import study_runs, tiny_spec

from speechprint.core.errors import ConfigError
from speechprint.study.runner import run_study
from speechprint.study.storage import default_storage


def first_study(archive: Path, cache_dir: Path) -> None:
    spec = tiny_spec(archive, models=["logreg"], extractors=["mfcc_mean"], n_trials=1, epochs=1)
    assert run_study(spec, cache_dir=str(cache_dir)).ran == 1


@pytest.mark.slow  # runs a study first
@pytest.mark.parametrize(
    ("changes", "changed"),
    [
        ({"models": ["logreg", "mlp"]}, "models"),
        ({"extractors": ["mfcc_mean", "mfcc_deltas"]}, "extractors"),
        ({"space": {"pair": ["mfcc_mean+logreg"]}}, "space.pair"),
        ({"train": {"epochs": 2, "max_frames": 100, "patience": 3}}, "train.epochs"),
        ({"cv": {"folds": 2}}, "cv"),
    ],
)
def test_an_edited_study_file_is_refused_before_any_trial(
    tiny_archive: Path, tracking: str, cache_dir: Path, changes: dict, changed: str
) -> None:
    first_study(tiny_archive, cache_dir)
    raw = {"models": ["logreg"], "extractors": ["mfcc_mean"], "n_trials": 3, "epochs": 1}
    edited = tiny_spec(tiny_archive, **{**raw, **changes})
    with pytest.raises(ConfigError, match=rf"changed: .*{changed}.*--new-version"):
        run_study(edited, cache_dir=str(cache_dir))
    parents, children = study_runs(tracking, "tiny")
    assert len(parents) == 1 and len(children) == 1  # no parent run, no trial for the refusal


@pytest.mark.slow  # runs a study first
def test_another_archive_on_resume_is_refused(
    tiny_archive: Path, tracking: str, cache_dir: Path, tmp_path: Path
) -> None:
    first_study(tiny_archive, cache_dir)
    other = shutil.copytree(tiny_archive, tmp_path / "other-archive")
    spec = tiny_spec(tiny_archive, models=["logreg"], extractors=["mfcc_mean"], epochs=1)
    with pytest.raises(ConfigError, match=rf"changed: data.archive \(it read {tiny_archive}\)"):
        run_study(spec, archive=str(other), cache_dir=str(cache_dir))


@pytest.mark.slow  # runs a study first
def test_new_version_runs_beside_the_old_study_and_resumes_itself(
    tiny_archive: Path, tracking: str, cache_dir: Path
) -> None:
    first_study(tiny_archive, cache_dir)
    edited = tiny_spec(
        tiny_archive, models=["logreg", "lda"], extractors=["mfcc_mean"], n_trials=1, epochs=1
    )
    outcome = run_study(edited, cache_dir=str(cache_dir), new_version=True)
    assert outcome.study.study_name == "tiny-v2" and outcome.ran == 1
    assert Path("studies/tiny-v2.db").exists()
    # The same command again resumes tiny-v2 (its definition matches), not a third version.
    again = run_study(edited.model_copy(), cache_dir=str(cache_dir), new_version=True)
    assert again.study.study_name == "tiny-v2" and again.ran == 0
    assert mlflow.MlflowClient(tracking).get_experiment_by_name("tiny-v3") is None


@pytest.mark.slow  # runs a study first
def test_a_changed_budget_or_description_resumes_the_same_study(
    tiny_archive: Path, tracking: str, cache_dir: Path
) -> None:
    first_study(tiny_archive, cache_dir)
    spec = tiny_spec(
        tiny_archive,
        models=["logreg"],
        extractors=["mfcc_mean"],
        n_trials=2,
        epochs=1,
        description="more trials",
        pruner={"name": "median"},
    )
    outcome = run_study(spec, archive=str(tiny_archive), cache_dir=str(cache_dir))
    assert outcome.study.study_name == "tiny" and outcome.ran == 1


@pytest.mark.parametrize(("option", "value"), [("n_trials", 0), ("n_trials", -1), ("jobs", 0)])
def test_numbers_below_one_are_refused_before_any_study_or_run(
    tiny_archive: Path, tracking: str, cache_dir: Path, option: str, value: int
) -> None:
    spec = tiny_spec(tiny_archive, models=["logreg"], extractors=["mfcc_mean"])
    flag = "--" + option.replace("_", "-")
    with pytest.raises(ConfigError, match=rf"^{flag} must be at least 1, got {value}$"):
        run_study(spec, cache_dir=str(cache_dir), **{option: value})
    assert not Path("studies").exists()
    assert mlflow.MlflowClient(tracking).get_experiment_by_name("tiny") is None


@pytest.mark.slow  # runs a study first
def test_a_trial_that_cannot_be_suggested_fails_with_its_reason(
    tiny_archive: Path, tracking: str, cache_dir: Path
) -> None:
    """A study stored before definitions were (nothing to compare) and then edited: Optuna
    refuses the changed choices inside the trial; the trial fails with that reason, not a '?'."""
    import optuna

    first_study(tiny_archive, cache_dir)
    stored = optuna.load_study(study_name="tiny", storage=default_storage("tiny"))
    stored.set_user_attr("definition", {})  # as a study created before definitions were stored
    edited = tiny_spec(tiny_archive, models=["logreg", "mlp"], extractors=["mfcc_mean"], n_trials=2)
    run_study(edited, cache_dir=str(cache_dir))
    failed = [t for t in stored.trials if t.state.name == "FAIL"]
    assert failed and "dynamic value space" in failed[-1].user_attrs["fail_reason"]
