"""The top trial is promoted only if it beats the study's linear baseline out of fold; otherwise
the simpler baseline is. Both branches are forced here with known out-of-fold predictions in a real
Optuna study and a real MLflow store, so neither depends on how training happened to go."""

from __future__ import annotations

from pathlib import Path

import mlflow
import optuna
import pytest

from speechprint.evaluation.evidence import OOF_ARTIFACT
from speechprint.release.candidates import choose

SPEAKERS = 60  # 2 classes, 30 speakers each: enough for a perfect lead to be distinguishable


def oof(correct: list[bool]) -> list[dict]:
    """One out-of-fold row per speaker: its class and a confident guess, right or wrong."""
    rows = []
    for index, right in enumerate(correct):
        truth = index % 2
        guess = truth if right else 1 - truth
        proba = [0.9, 0.1] if guess == 0 else [0.1, 0.9]
        rows.append(
            {"repeat": 0, "fold": index % 3, "path": f"s{index}.mp3", "speakerid": f"s{index}"}
            | {"y_true": truth, "proba": proba}
        )
    return rows


def trial_with(
    client: mlflow.MlflowClient, experiment: str, model: str, value: float, rows: list[dict]
) -> optuna.trial.FrozenTrial:
    run = client.create_run(experiment)
    client.log_dict(run.info.run_id, {"rows": rows}, OOF_ARTIFACT)
    client.set_terminated(run.info.run_id)
    attrs = {
        "model": model,
        "pair": f"mfcc_mean+{model}",
        "mlflow_run_id": run.info.run_id,
        "data_fingerprint": "same-data",
        "cv_balanced_accuracy_mean": value,
        "cv_balanced_accuracy_ci_low": value - 0.1,
        "cv_balanced_accuracy_ci_high": value + 0.1,
        "cv_folds": 3,
        "cv_repeats": 1,
    }
    queued = {"fixed_params": {"pair": attrs["pair"]}} if model == "logreg" else {}
    return optuna.trial.create_trial(
        value=value, params={}, distributions={}, user_attrs=attrs, system_attrs=queued
    )


@pytest.mark.parametrize(
    ("top_correct", "chosen"),
    [
        (lambda base: list(base), "baseline"),  # the same predictions: a lead within noise
        (lambda base: [True] * SPEAKERS, "top"),  # right everywhere the baseline is at chance
    ],
)
def test_the_top_trial_is_promoted_only_if_it_beats_the_linear_baseline_out_of_fold(
    tracking: str,
    tmp_path: Path,
    top_correct,
    chosen: str,  # noqa: ANN001
) -> None:
    client = mlflow.MlflowClient(tracking)
    experiment = client.create_experiment("gate")
    baseline_correct = [index % 4 < 2 for index in range(SPEAKERS)]  # half right: chance
    study = optuna.create_study(
        study_name="gate", storage=f"sqlite:///{tmp_path / 'gate.db'}", direction="maximize"
    )
    study.add_trial(trial_with(client, experiment, "logreg", 0.50, oof(baseline_correct)))
    study.add_trial(trial_with(client, experiment, "mlp", 0.70, oof(top_correct(baseline_correct))))
    candidate = choose(study, client)
    (member,) = candidate.members
    assert member.number == (0 if chosen == "baseline" else 1)
    if chosen == "baseline":
        assert "does not beat the linear baseline distinguishably" in candidate.note
    else:
        assert "lead over the linear baseline" in candidate.note
