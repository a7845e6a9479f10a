"""Candidates for promotion: a study's trial, or an ensemble of its best trials, refit and tested.

Each member trial is refit on all development speakers (``speechprint.release.refit``) in a run of its own
(``kind=refit``, cached: promoting again reuses it), which also scores it once on the test split.
An ensemble gets a run of its own too, holding the one pyfunc model that averages its members.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna

from speechprint.core.errors import ConfigError
from speechprint.evaluation.evidence import (
    OOF_ARTIFACT,
    Selection,
    download_json,
    ensemble_selection,
    linear_baseline,
    oof_rows,
    paired_oof,
    selection_of,
)
from speechprint.evaluation.metrics import score_split, training_counts
from speechprint.inference.ensemble import EnsembleClassifier
from speechprint.inference.pyfunc import load_classifier
from speechprint.release.refit import refit
from speechprint.study.summary import extractor_label, pair_of
from speechprint.tracking import store as tracking
from speechprint.tracking.runs import open_run
from speechprint.train import RunConfig, model_seed_variants
from speechprint.train.prepare import prepare_data

log = logging.getLogger(__name__)


@dataclass
class Candidate:
    members: list[optuna.trial.FrozenTrial]
    selection: Selection
    note: str = ""  # why this candidate and not the study's top trial, when it is not

    @property
    def key(self) -> str:
        """Which trials this candidate is, e.g. ``"12"`` or ``"12+4+0"`` (an ensemble)."""
        return "+".join(str(t.number) for t in self.members)

    @property
    def label(self) -> str:
        names = [f"trial {t.number} {pair_of(t)}" for t in self.members]
        return names[0] if len(names) == 1 else f"ensemble of {', '.join(names)}"


@dataclass
class Fitted:
    """A candidate's refit model: the run holding it and its test metrics (with predictions)."""

    run_id: str
    test: dict[str, Any]
    trained_on: dict[str, Any]


ENSEMBLE_BY = ("trial", "pair")


def choose(
    study: optuna.Study,
    client: Any,
    *,
    trial: int | None = None,
    ensemble: int = 0,
    ensemble_by: str = "trial",
) -> Candidate:
    """The study's best trial (by its selection score), a named trial, or an ensemble: the
    top-``ensemble`` trials, or with ``ensemble_by="pair"`` the best trial of each of the top
    ``ensemble`` extractor x model pairs (members that differ, not near-copies of one recipe)."""
    if ensemble_by not in ENSEMBLE_BY:
        raise ConfigError(
            f"ensemble_by must be one of {', '.join(ENSEMBLE_BY)}, not {ensemble_by!r}"
        )
    complete = sorted(
        (
            t
            for t in study.get_trials(deepcopy=False)
            if t.state == optuna.trial.TrialState.COMPLETE
        ),
        key=lambda t: t.value or 0.0,
        reverse=True,
    )
    if not complete:
        raise ConfigError(f"study {study.study_name!r} has no completed trial to promote")
    if trial is not None:
        chosen = [t for t in study.get_trials(deepcopy=False) if t.number == trial]
        if not chosen:
            raise ConfigError(
                f"study {study.study_name!r} has no trial {trial} (it has {len(study.trials)})"
            )
        if chosen[0].state != optuna.trial.TrialState.COMPLETE:
            raise ConfigError(
                f"trial {trial} of {study.study_name!r} is {chosen[0].state.name}: "
                "only a COMPLETE trial has a model to promote"
            )
        return Candidate(chosen, selection_of(chosen[0]))
    if ensemble <= 1:
        return _prefer_the_baseline_unless_beaten(study, client, complete[0])
    members = (best_of_each_pair(complete) if ensemble_by == "pair" else complete)[:ensemble]
    if len(members) < 2:
        raise ConfigError(
            f"an ensemble needs two members: study {study.study_name!r} has "
            f"{len(members)} completed {ensemble_by}(s)"
        )
    labels = _labels(client, members[0])
    rows = [oof_rows(client, member) for member in members]
    return Candidate(members, ensemble_selection(rows, labels, selection_of(members[0])))


def best_of_each_pair(ranked: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    """The first (best) trial of each pair, in the order of ``ranked``."""
    best: dict[str, optuna.trial.FrozenTrial] = {}
    for t in ranked:
        best.setdefault(pair_of(t), t)
    return list(best.values())


def _prefer_the_baseline_unless_beaten(
    study: optuna.Study, client: Any, best: optuna.trial.FrozenTrial
) -> Candidate:
    """The top trial, unless its lead over the study's linear baseline is not distinguishable
    from zero on the same development speakers out of fold: then the simpler baseline (a lead
    within noise is how selection overfits the folds)."""
    baseline = linear_baseline(study)
    cross_validated = "cv_balanced_accuracy_mean" in best.user_attrs
    if baseline is None or baseline.number == best.number or not cross_validated:
        return Candidate([best], selection_of(best))
    lead = paired_oof(oof_rows(client, best), oof_rows(client, baseline))
    if lead.distinguishable and lead.difference > 0:
        return Candidate(
            [best],
            selection_of(best),
            note=f"Its lead over the linear baseline out of fold: {lead.verdict('it', 'baseline')}.",
        )
    return Candidate(
        [baseline],
        selection_of(baseline),
        note=(
            f"The top trial {best.number} ({pair_of(best)}, {selection_of(best).score:.3f}) does not "
            f"beat the linear baseline distinguishably out of fold ({lead.verdict(f'trial {best.number}', 'baseline')}), "
            "so the simpler baseline is promoted."
        ),
    )


def fit(
    client: Any, study_name: str, candidate: Candidate, *, archive: str | None, jobs: int | None
) -> Fitted:
    """Refit every member (reusing earlier refits) and, for an ensemble, build its model."""
    fitted = [
        refit_trial(client, study_name, t, archive=archive, jobs=jobs) for t in candidate.members
    ]
    if len(fitted) == 1:
        return fitted[0]
    return _ensemble_run(client, study_name, candidate, fitted)


def refit_trial(
    client: Any,
    study_name: str,
    trial: optuna.trial.FrozenTrial,
    *,
    archive: str | None,
    jobs: int | None,
) -> Fitted:
    """The trial refit on train+val and scored once on test, in a ``kind=refit`` run (cached).

    A torch trial scored with ``cv: {seeds: N}`` had each fold's probabilities averaged over N
    model seeds, so its model is that average too: N refits (one run each) and the run of their
    average, which holds the model promoted.
    """
    key = str(trial.number)
    if (existing := _fitted_before(client, study_name, key)) is not None:
        return existing
    config = RunConfig.from_dict(
        download_json(client, trial.user_attrs["mlflow_run_id"], "config.json")
    )
    config.jobs = jobs
    if archive is not None:
        config.archive = str(archive)
    data = prepare_data(config)  # once: config.seed also draws the split, the model seeds do not
    tags = {
        "extractor": config.extractor,
        "model": config.model,
        "extractor_label": extractor_label(trial),
        "refit_of_run": trial.user_attrs["mlflow_run_id"],
    }
    variants = model_seed_variants(config, int(trial.user_attrs.get("cv_seeds") or 1))
    if len(variants) == 1:
        return _refit(client, study_name, key, trial, config, data, tags)
    members = [
        _fitted_before(client, study_name, f"{key}-seed{offset}")
        or _refit(
            client,
            study_name,
            f"{key}-seed{offset}",
            trial,
            seeded,
            data,
            {**tags, "model_seed": offset},
        )
        for offset, seeded in enumerate(variants)
    ]
    averaged = {**tags, **members[0].trained_on, "model_seeds": len(variants)}
    # Its configuration too: `findings` retrains it by fold, averaging the same seeds.
    return _averaged_run(client, study_name, "refit", key, averaged, members, config.to_dict())


def _refit(
    client: Any,
    study_name: str,
    key: str,
    trial: optuna.trial.FrozenTrial,
    config: Any,
    data: Any,
    tags: dict[str, Any],
) -> Fitted:
    with _candidate_run(client, study_name, "refit", key, tags) as tracker:
        epochs = int(trial.user_attrs.get("refit_epochs") or config.train.epochs)
        result = refit(config, data, epochs=epochs, tracker=tracker)
        _log_test_extras(tracker, result.test or {})
    run = client.get_run(tracker.run_id)
    return Fitted(tracker.run_id, result.test or {}, _trained_on(run.data.tags))


def _ensemble_run(
    client: Any, study_name: str, candidate: Candidate, fitted: list[Fitted]
) -> Fitted:
    """One run holding the top-k ensemble's pyfunc and its test metrics."""
    if (existing := _fitted_before(client, study_name, candidate.key)) is not None:
        return existing
    return _averaged_run(
        client,
        study_name,
        "ensemble",
        candidate.key,
        {
            "extractor": "+".join(t.user_attrs.get("extractor", "?") for t in candidate.members),
            "extractor_label": "+".join(extractor_label(t) for t in candidate.members),
            "model": "ensemble",
            "trained_on": "train+val",
        },
        fitted,
    )


def _averaged_run(
    client: Any,
    study_name: str,
    kind: str,
    key: str,
    tags: dict[str, Any],
    fitted: list[Fitted],
    config: dict[str, Any] | None = None,
) -> Fitted:
    """A run holding the average of ``fitted`` models as one pyfunc, with its test metrics
    (the members' probabilities averaged on the same test files)."""
    run_tags = {"trained_on": "train+val", **tags}
    with _candidate_run(client, study_name, kind, key, run_tags) as tracker:
        test = averaged_test([f.test for f in fitted])
        tracker.log_metrics({f"test/{k}": v for k, v in test.items() if isinstance(v, float)})
        _log_test_extras(tracker, test)
        tracker.log_dict(test, "test_metrics.json")
        if config is not None:
            tracker.log_dict(config, "config.json")
        members = [load_classifier(client, f.run_id) for f in fitted]
        tracker.log_classifier(EnsembleClassifier(members))
    trained_on = _trained_on({"trained_on": "train+val", **tags})
    return Fitted(tracker.run_id, test, {**trained_on, "members": key})


def averaged_test(tests: list[dict[str, Any]]) -> dict[str, Any]:
    """The test record of models averaged: their probabilities on the first one's test files,
    scored against their training counts (the majority baseline never comes from the test
    labels)."""
    first = tests[0]
    files = list(first["files"])
    by_file = [dict(zip(test["files"], test["proba"])) for test in tests]
    proba = np.mean([[rows[path] for path in files] for rows in by_file], axis=0)
    counts = training_counts(first)
    return score_split(first["y_true"], proba, first["labels"], train_counts=counts, files=files)


def _candidate_run(
    client: Any, study_name: str, kind: str, key: str, tags: dict[str, Any]
) -> AbstractContextManager[tracking.MLflowTracker]:
    """The candidate's run, FAILED with its reason if the body raises (``open_run``)."""
    return open_run(
        client,
        study_name,
        run_name=f"{kind} trial-{key}",
        tags={"kind": kind, "study": study_name, "candidate": key, "trial_number": key, **tags},
    )


def _fitted_before(client: Any, study_name: str, key: str) -> Fitted | None:
    """The candidate ``key``'s finished run from an earlier promotion, if there is one."""
    existing = finished_run(client, study_name, key)
    if existing is None:
        return None
    return Fitted(
        existing.info.run_id,
        download_json(client, existing.info.run_id, "test_metrics.json"),
        _trained_on(existing.data.tags),
    )


def finished_run(client: Any, study_name: str, key: str) -> Any | None:
    """The finished run of candidate ``key`` (``"12"``, ``"12-seed1"``, ``"12+4"``) of a study."""
    experiment = client.get_experiment_by_name(study_name)
    if experiment is None:
        return None
    runs = client.search_runs(
        [experiment.experiment_id],
        f"tags.candidate = '{key}' and attributes.status = 'FINISHED'",
        max_results=1,
    )
    return runs[0] if runs else None


def _log_test_extras(tracker: tracking.MLflowTracker, test: dict[str, Any]) -> None:
    if not test:
        return
    low, high = test["balanced_accuracy_ci"]
    tracker.log_metrics(
        {
            "test/balanced_accuracy_ci_low": low,
            "test/balanced_accuracy_ci_high": high,
            "test/majority_accuracy": test["majority_baseline"]["accuracy"],
        }
    )


def _trained_on(tags: dict[str, str]) -> dict[str, Any]:
    return {k: tags[k] for k in ("trained_on", "refit_epochs", "model_seeds") if k in tags}


def _labels(client: Any, trial: optuna.trial.FrozenTrial) -> list[str]:
    return list(download_json(client, trial.user_attrs["mlflow_run_id"], OOF_ARTIFACT)["labels"])
