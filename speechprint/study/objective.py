"""The objective: one Optuna trial -> ``RunConfig`` -> ``run()`` -> validation balanced accuracy.

One failure policy: a pruned trial (the median pruner, or a NaN loss) and a failed one (any other
exception) keep their reason in Optuna and on their MLflow run, and the run is always closed.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Iterator
from typing import Any

import optuna

from speechprint.evaluation.evidence import OOF_ARTIFACT
from speechprint.study.recovery import mark_worker
from speechprint.study.session import StudySession, TrialCallback
from speechprint.study.space import base_config, extractor_key, suggest_config
from speechprint.study.spec import StudySpec, prune_rule
from speechprint.tracking import store as tracking
from speechprint.tracking.runs import Ending, failed, open_run
from speechprint.train import NonFiniteLossError, RunConfig, run
from speechprint.train.cv import cross_validate
from speechprint.train.prepare import prepare_data


def prepare_features(
    spec: StudySpec,
    *,
    jobs: int | None = None,
    cache_dir: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Data preparation, an explicit step: features of every extractor, once, before trials."""
    prepared = {}
    for choice in spec.extractors:
        config = base_config(spec, choice.key, spec.models[0])
        config.jobs, config.cache_dir = jobs, cache_dir
        prepared[choice.key] = prepare_data(config, progress=progress)
    return prepared


def optimize(
    session: StudySession,
    prepared: dict[str, Any],
    *,
    timeout: float | None,
    on_trial: TrialCallback | None,
) -> None:
    """Run ``session``'s missing trials in this process over the ``prepared`` features."""
    session.optimize(make_objective(session, prepared), timeout=timeout, on_trial=on_trial)


def make_objective(
    session: StudySession, prepared: dict[str, Any]
) -> Callable[[optuna.Trial], float]:
    """The objective of ``session``'s study over features ``prepared`` per extractor."""
    spec = session.spec

    def objective(trial: optuna.Trial) -> float:
        mark_worker(trial)  # first: a kill from here on is detected by the other workers
        try:
            config = suggest_config(trial, spec)
        except Exception as error:  # before any run exists: the trial keeps the reason itself
            trial.set_user_attr("fail_reason", failed(error)[1][:2000])
            raise
        key = extractor_key(spec, config)
        data = prepared[key]
        with _trial_run(session, trial, config, data.dataset.fingerprint, label=key) as tracker:
            try:
                return _score(trial, spec.cv, config, data, tracker)
            except NonFiniteLossError as error:
                raise optuna.TrialPruned(str(error)) from error

    return objective


@contextlib.contextmanager
def _trial_run(
    session: StudySession, trial: optuna.Trial, config: RunConfig, fingerprint: str, *, label: str
) -> Iterator[tracking.MLflowTracker]:
    """The trial's child run, named for what it is: ``trial-0007 whisper_encoder+logreg`` (a
    labelled extractor by its ``label``); closed by the trial's ending (``_ending``)."""
    pair = f"{label}+{config.model}"
    with open_run(
        session.client,
        session.spec.name,
        run_name=f"trial-{trial.number:04d} {pair}",
        parent_run_id=session.parent.run_id,
        tags={
            "study": session.spec.name,
            "trial_number": trial.number,
            "extractor": config.extractor,
            "extractor_label": label,
            "model": config.model,
            "data_fingerprint": fingerprint,
            "regions": config.regions,
            "worker": f"{socket.gethostname()}:{os.getpid()}",
        },
        ending=_ending(trial),
    ) as tracker:
        for key, value in {
            "mlflow_run_id": tracker.run_id,
            "extractor": config.extractor,
            "model": config.model,
            "pair": pair,
            "data_fingerprint": fingerprint,
        }.items():
            trial.set_user_attr(key, value)
        tracker.log_params(config.to_dict())
        yield tracker


def _ending(trial: optuna.Trial) -> Ending:
    """A pruned trial's run ends PRUNED (KILLED in MLflow) with its ``prune_reason``, any other
    exception FAIL with its ``fail_reason``; the trial keeps the same reason."""

    def ending(error: BaseException) -> tuple[str, str]:
        if isinstance(error, optuna.TrialPruned):
            state, reason = "PRUNED", str(error)
        else:
            state, reason = failed(error)
        trial.set_user_attr("fail_reason" if state == "FAIL" else "prune_reason", reason[:2000])
        return state, reason

    return ending


def _score(
    trial: optuna.Trial, cv: Any, config: RunConfig, data: Any, tracker: tracking.MLflowTracker
) -> float:
    """Validation balanced accuracy, or the k-fold mean when the study scores by ``cv``."""

    def report(step: int, value: float) -> None:
        trial.report(value, step)
        if trial.should_prune():
            unit = "fold" if cv else "epoch"
            raise optuna.TrialPruned(
                f"pruned at {unit} {step}: val balanced accuracy {value:.3f} "
                + prune_rule(trial.study.pruner)
            )

    if cv is None:
        result = run(config, data, tracker, report=report)
        for key in ("balanced_accuracy", "macro_f1", "accuracy", "balanced_accuracy_ci"):
            trial.set_user_attr(f"val_{key}", result.val[key])
        trial.set_user_attr("refit_epochs", int(result.best_epoch))
        return float(result.val["balanced_accuracy"])
    # Cross-validated: the objective is the k-fold mean, pruned fold by fold. No model is kept
    # here: promotion refits the chosen configuration on all development speakers.
    folds = cross_validate(
        config, data, folds=cv.folds, repeats=cv.repeats, seeds=cv.seeds, report=report
    )
    log_cv(tracker, folds, config, list(data.dataset.labels))
    for key, value in folds.metrics().items():
        trial.set_user_attr(key.replace("/", "_"), value)
    trial.set_user_attr("refit_epochs", folds.refit_epochs)
    trial.set_user_attr("cv_folds", folds.folds)
    trial.set_user_attr("cv_repeats", folds.repeats)
    trial.set_user_attr("cv_seeds", folds.seeds)  # the refit averages as many model seeds
    return folds.mean


def log_cv(
    tracker: tracking.MLflowTracker, folds: Any, config: RunConfig, labels: list[str]
) -> None:
    """Per-fold scores (step = fold), summary metrics, out-of-fold predictions and the config."""
    for step, (score, f1) in enumerate(zip(folds.scores, folds.macro_f1), start=1):
        tracker.log_metrics({"cv/fold_balanced_accuracy": score, "cv/fold_macro_f1": f1}, step=step)
    tracker.log_metrics(folds.metrics())
    tracker.log_dict(
        {
            "labels": labels,
            "folds": folds.folds,
            "repeats": folds.repeats,
            "seeds": folds.seeds,
            "scores": folds.scores,
            "best_epochs": folds.best_epochs,
            "rows": folds.oof,
        },
        OOF_ARTIFACT,
    )
    tracker.log_dict(config.to_dict(), "config.json")
