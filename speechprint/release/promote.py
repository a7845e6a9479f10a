"""From study to model: promotion by evidence that does not spend the test split.

The candidate (the study's best trial by its selection score, a named trial, or an ensemble of the
top trials) is refit on all development speakers and scored once on test. The alias (``champion``)
moves on the *selection* evidence (cross-validated score, or validation when the study has no
``cv:``), compared with the incumbent's only when both were measured the same way on the same data;
otherwise the new version becomes ``challenger``. The test score is measured and reported beside the
incumbent's and the study's linear baseline's on the same test speakers, with paired bootstrap
intervals of the differences, and never used to choose.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from mlflow import MlflowClient

from speechprint.evaluation.evidence import (
    Selection,
    download_json,
    linear_baseline,
    paired_on_test,
)
from speechprint.evaluation.metrics import PairedDifference, score_split, training_counts
from speechprint.inference.pyfunc import load_classifier
from speechprint.release import registry
from speechprint.release.candidates import Candidate, Fitted, choose, fit, refit_trial
from speechprint.release.gate import Gate, GateVerdict
from speechprint.study.storage import load_study
from speechprint.study.summary import pair_of
from speechprint.tracking import store as tracking

DEFAULT_MODEL_NAME = "speechprint-accent"
DEFAULT_ALIAS = "champion"
CHALLENGER_ALIAS = "challenger"


INCUMBENT = "incumbent"  # the model that held the alias
LINEAR_BASELINE = "linear_baseline"  # the study's linear baseline, refit


@dataclass
class Comparison:
    """Ours against another model on the same test speakers; ``kind`` says which (``name`` is
    only for people)."""

    kind: str  # INCUMBENT or LINEAR_BASELINE
    name: str
    test_balanced_accuracy: float
    difference: PairedDifference


@dataclass
class Promotion:
    model_name: str
    version: str
    alias: str  # the alias this version now holds: the asked alias or "challenger"
    promoted: bool
    new_version: bool
    candidate: str
    selection: Selection
    test_metrics: dict[str, Any]
    reason: str
    run_id: str
    trained_on: dict[str, Any] = field(default_factory=dict)
    comparisons: list[Comparison] = field(default_factory=list)
    incumbent_version: str | None = None
    note: str = ""
    gate: GateVerdict | None = None  # the check beside the selection evidence, when one ran

    @property
    def test_balanced_accuracy(self) -> float:
        return float(self.test_metrics["balanced_accuracy"])

    @property
    def test_interval(self) -> tuple[float, float]:
        low, high = self.test_metrics["balanced_accuracy_ci"]
        return float(low), float(high)

    def summary(self) -> str:
        verdict = (
            f"'{self.alias}' -> v{self.version}"
            if self.promoted
            else f"'{self.alias}' set on v{self.version}"
        )
        test = self.test_metrics
        low, high = self.test_interval
        lines = [
            f"{verdict} ({self.candidate}), chosen by {self.selection.describe()}. {self.reason}"
            + (f"\n{self.note}" if self.note else "")
            + "".join(f"\n  {line}" for line in (self.gate.details if self.gate else [])),
            f"v{self.version} trained on {self.trained_on.get('trained_on', 'train')}"
            + (
                f" for {self.trained_on['refit_epochs']} epochs"
                if "refit_epochs" in self.trained_on
                else ""
            )
            + (
                f", averaged over {self.trained_on['model_seeds']} model seeds"
                if "model_seeds" in self.trained_on
                else ""
            )
            + f"; test balanced accuracy {self.test_balanced_accuracy:.3f} [95% CI {low:.3f}-{high:.3f}] "
            f"on {test['n']} speakers (chance {test['chance']:.3f}, majority-class accuracy "
            f"{test['majority_baseline']['accuracy']:.3f}): measured, not used to choose.",
        ]
        for other in self.comparisons:
            lines.append(
                f"  vs {other.name} (test {other.test_balanced_accuracy:.3f}): "
                + other.difference.verdict(f"v{self.version}", "it")
            )
        return "\n".join(lines)


def promote(
    study_name: str,
    *,
    storage: str | None = None,
    model_name: str = DEFAULT_MODEL_NAME,
    alias: str = DEFAULT_ALIAS,
    archive: str | None = None,
    jobs: int | None = None,
    trial: int | None = None,
    ensemble: int = 0,
    ensemble_by: str = "trial",
    gate: Gate | None = None,
) -> Promotion:
    """Refit and register the study's candidate; move ``alias`` only on selection evidence,
    and only when ``gate`` (a check beside it, e.g. another corpus) passes."""
    study = load_study(study_name, storage)
    client = tracking.client()
    tracking.check_reachable(client)
    candidate = choose(study, client, trial=trial, ensemble=ensemble, ensemble_by=ensemble_by)
    fitted = fit(client, study_name, candidate, archive=archive, jobs=jobs)
    version, new_version = _register(client, model_name, study_name, candidate, fitted)
    incumbent = registry.alias_holder(client, model_name, alias)
    decision = _decide(client, model_name, alias, version, candidate, incumbent, gate)
    promoted, held, reason, verdict = decision
    comparisons = _comparisons(
        client,
        study,
        study_name,
        candidate,
        fitted,
        (alias, incumbent),
        version,
        archive=archive,
        jobs=jobs,
    )
    for other in comparisons:
        if other.kind == LINEAR_BASELINE:
            d = other.difference
            client.set_tag(
                fitted.run_id,
                "paired_vs_linear_baseline",
                f"{d.difference:+.3f} [{d.low:+.3f}, {d.high:+.3f}]",
            )
    return Promotion(
        model_name=model_name,
        version=str(version.version),
        alias=held,
        promoted=promoted,
        new_version=new_version,
        candidate=candidate.label,
        selection=candidate.selection,
        test_metrics=fitted.test,
        reason=reason,
        run_id=fitted.run_id,
        trained_on=fitted.trained_on,
        comparisons=comparisons,
        incumbent_version=None if incumbent is None else str(incumbent.version),
        note=candidate.note,
        gate=verdict,
    )


def _register(
    client: MlflowClient, model_name: str, study_name: str, candidate: Candidate, fitted: Fitted
) -> tuple[Any, bool]:
    """A new model version of the refit run, or the one registered before for it."""
    existing = registry.version_of_run(client, model_name, fitted.run_id)
    if existing is not None:
        return existing, False
    registry.ensure_registered_model(client, model_name)
    test = fitted.test
    low, high = test["balanced_accuracy_ci"]
    first = candidate.members[0]
    tags = {
        "study": study_name,
        "trial": candidate.key,
        "candidate": candidate.label,
        "run_id": fitted.run_id,
        "extractor": first.user_attrs.get("extractor", ""),
        "model": "ensemble" if len(candidate.members) > 1 else first.user_attrs.get("model", ""),
        **candidate.selection.as_tags(),
        **{k: str(v) for k, v in fitted.trained_on.items()},
        "test_balanced_accuracy": f"{test['balanced_accuracy']:.4f}",
        "test_balanced_accuracy_ci95": f"{low:.4f}-{high:.4f}",
        "test_macro_f1": f"{test['macro_f1']:.4f}",
        "data_fingerprint": candidate.selection.fingerprint,
        "labels": json.dumps(list(test["labels"])),
    }
    version = client.create_model_version(
        model_name,
        f"runs:/{fitted.run_id}/model",
        run_id=fitted.run_id,
        tags=tags,
        description=f"{candidate.label} of study {study_name}, refit on all development speakers",
    )
    for key, value in {
        "registered_as": f"{model_name} v{version.version}",
        **candidate.selection.as_tags(),
    }.items():
        client.set_tag(fitted.run_id, key, value)
    return version, True


def _decide(
    client: MlflowClient,
    model_name: str,
    alias: str,
    version: Any,
    candidate: Candidate,
    incumbent: Any,
    gate: Gate | None,
) -> tuple[bool, str, str, GateVerdict | None]:
    """Move ``alias`` when the selection evidence beats the incumbent's (test never decides)
    and ``gate`` passes; else the version becomes the challenger. Returns (moved, alias held,
    reason, the gate's verdict when it was asked)."""
    ours = candidate.selection
    if incumbent is not None and incumbent.version == version.version:
        return True, alias, f"v{version.version} already holds '{alias}'.", None
    theirs = None if incumbent is None else Selection.from_tags(incumbent.tags)
    wins = incumbent is None or (
        theirs is not None and theirs.comparable(ours) and ours.score > theirs.score
    )
    verdict = None
    if wins and gate is not None:
        verdict = gate(version.run_id, None if incumbent is None else incumbent.run_id)
        for key, value in verdict.tags.items():
            client.set_model_version_tag(model_name, version.version, key, value)
    if wins and (verdict is None or verdict.passed):
        client.set_registered_model_alias(model_name, alias, version.version)
        challenger = registry.alias_holder(client, model_name, CHALLENGER_ALIAS)
        if challenger is not None and challenger.version == version.version:
            client.delete_registered_model_alias(model_name, CHALLENGER_ALIAS)  # it is no more
        if incumbent is None:
            why = "First model under this alias."
        else:
            assert theirs is not None  # wins over an incumbent needs its evidence
            why = (
                f"It beats v{incumbent.version}'s {theirs.score:.3f} by the same measure on "
                "the same data."
            )
        return True, alias, why + (f" {verdict.reason}" if verdict else ""), verdict
    client.set_registered_model_alias(model_name, CHALLENGER_ALIAS, version.version)
    if verdict is not None:
        stays = "is not set" if incumbent is None else f"stays on v{incumbent.version}"
        return False, CHALLENGER_ALIAS, f"'{alias}' {stays}: {verdict.reason}", verdict
    if theirs is None or not theirs.comparable(ours):
        why = (
            f"v{incumbent.version} was chosen by another measure or on other data "
            f"({theirs.describe() if theirs else 'no selection evidence'}), so the two cannot "
            "be compared without the test split"
        )
    else:
        why = f"it does not beat v{incumbent.version}'s {theirs.score:.3f}"
    return False, CHALLENGER_ALIAS, f"'{alias}' stays on v{incumbent.version}: {why}.", None


def _comparisons(
    client: MlflowClient,
    study: Any,
    study_name: str,
    candidate: Candidate,
    fitted: Fitted,
    holder: tuple[str, Any],
    version: Any,
    *,
    archive: str | None,
    jobs: int | None,
) -> list[Comparison]:
    """Paired test differences against the alias's holder (``(alias, version or None)``) and
    the study's linear baseline."""
    out = []
    alias, incumbent = holder
    if incumbent is not None and incumbent.version != version.version:
        theirs = _test_predictions(client, incumbent, fitted.test, candidate.selection)
        if theirs is not None:
            name = f"v{incumbent.version} (previous '{alias}' holder)"
            out.append(_compare(INCUMBENT, name, fitted.test, theirs))
    baseline = linear_baseline(study)
    if baseline is not None and [t.number for t in candidate.members] != [baseline.number]:
        base = refit_trial(client, study_name, baseline, archive=archive, jobs=jobs)
        name = f"linear baseline trial {baseline.number} {pair_of(baseline)}"
        out.append(_compare(LINEAR_BASELINE, name, fitted.test, base.test))
    return out


def _compare(kind: str, name: str, ours: dict[str, Any], theirs: dict[str, Any]) -> Comparison:
    return Comparison(kind, name, float(theirs["balanced_accuracy"]), paired_on_test(ours, theirs))


def _test_predictions(
    client: MlflowClient, incumbent: Any, ours: dict[str, Any], selection: Selection
) -> dict[str, Any] | None:
    """The incumbent's predictions on our test files: its own record when its test split is
    ours, else its model run on our files; None when it predicts other labels, or was chosen on
    other data (another split, seed or region table: our test speakers may be its training
    speakers, so its score on them would flatter it), as the alias decision is gated."""
    if incumbent.tags.get("data_fingerprint", "") != selection.fingerprint:
        return None
    if json.loads(incumbent.tags.get("labels", "[]")) != list(ours["labels"]):
        return None
    try:
        recorded = download_json(client, incumbent.run_id, "test_metrics.json")
    except Exception:  # noqa: BLE001 - an older version without the record
        recorded = {}
    if set(recorded.get("files", [])) >= set(ours["files"]):
        return recorded
    classifier = load_classifier(client, incumbent.run_id)
    proba, errors = classifier.predict_proba_files(ours["files"])
    kept = [i for i, f in enumerate(ours["files"]) if f not in errors]
    truth = [ours["y_true"][i] for i in kept]
    files = [ours["files"][i] for i in kept]
    counts = training_counts(ours)  # same data as ours (gated above), so the same baseline
    return score_split(truth, proba, list(ours["labels"]), train_counts=counts, files=files)
