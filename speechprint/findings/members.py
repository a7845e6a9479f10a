"""Findings for an ensemble: each member's honest predictions, averaged as the ensemble averages.

An ensemble run (``kind=ensemble``, from ``speechprint promote --ensemble``) holds one pyfunc model
but no configuration of its own; its members are the refit runs of its trials. Each member is
retrained by fold as a single model is (``build_subject``, cached per member) and the out-of-fold
probabilities are averaged per recording: the ensemble's own out-of-fold predictions. Words are
measured on a member whose inputs have words (frames, or ``whisper_words``), and the page says so.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from speechprint.core.errors import ConfigError
from speechprint.findings import occlusion
from speechprint.findings.subject import Subject, build_subject, load_config, model_seeds
from speechprint.release.candidates import finished_run
from speechprint.tracking import store as tracking


def member_runs(run_id: str) -> list[str] | None:
    """The refit runs an ensemble run averages (in its order); None for a single model's run."""
    client = tracking.client()
    tags = client.get_run(run_id).data.tags
    if tags.get("kind") != "ensemble":
        return None
    study, keys = tags.get("study", ""), tags.get("candidate", "").split("+")
    runs = [finished_run(client, study, key) for key in keys]
    missing = [key for key, run in zip(keys, runs) if run is None]
    if missing:
        raise ConfigError(
            f"run {run_id} is an ensemble of trials {'+'.join(keys)} of study "
            f"{study!r}, but the refit run of trial(s) {', '.join(missing)} is "
            "gone from the MLflow store"
        )
    return [run.info.run_id for run in runs if run is not None]  # none is missing here


def ensemble_subject(
    run_id: str,
    members: list[str],
    *,
    predictions: str,
    folds: int,
    progress: bool,
    **overrides: Any,
) -> Subject:
    """One subject for the ensemble: members' probabilities averaged on the recordings all of
    them scored; frame, features and fold models those of the member words are measured on."""
    subjects = [
        build_subject(
            member,
            load_config(member, **overrides),
            predictions=predictions,
            folds=folds,
            progress=progress,
            seeds=model_seeds(member),
        )
        for member in members
    ]
    if len({s.labels for s in subjects}) > 1:
        raise ConfigError(f"the members of ensemble run {run_id} predict different labels")
    base = next((s for s in subjects if occlusion.can_occlude(s.features.extractor)), subjects[0])
    common = set.intersection(*(set(s.frame["path"]) for s in subjects))
    keep = base.frame["path"].isin(common).to_numpy()
    frame = base.frame[keep].reset_index(drop=True)
    rows = [dict(zip(s.frame["path"], s.proba)) for s in subjects]
    proba = np.mean([[by_path[p] for p in frame["path"]] for by_path in rows], axis=0)
    names = [s.description for s in subjects]
    return dataclasses.replace(
        base,
        run_id=run_id,
        frame=frame,
        proba=proba,
        name=f"ensemble of {len(subjects)} ({'; '.join(names)})",
        words_from=base.description,
    )
