"""From study to model: evaluate the best trial on the held-out test split and promote by evidence.

The best trial is chosen by validation balanced accuracy only; its test score is measured once, here,
and decides whether the alias (``champion``) moves. The previous holder is scored on the same test
split (same data fingerprint), so the comparison is like for like.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow import MlflowClient

from speechprint import tracking
from speechprint.errors import ConfigError
from speechprint.study.storage import load_study

DEFAULT_MODEL_NAME = "speechprint-accent"
DEFAULT_ALIAS = "champion"
CHALLENGER_ALIAS = "challenger"


@dataclass
class Promotion:
    model_name: str
    version: str
    alias: str  # the alias this version now holds: champion's name or "challenger"
    promoted: bool
    new_version: bool
    test_balanced_accuracy: float
    test_interval: tuple[float, float]
    incumbent_version: str | None
    incumbent_test_balanced_accuracy: float | None
    reason: str
    run_id: str
    test_metrics: dict[str, Any]

    def summary(self) -> str:
        low, high = self.test_interval
        ours = f"v{self.version}: test balanced accuracy {self.test_balanced_accuracy:.3f} [95% CI {low:.3f}-{high:.3f}]"
        if self.incumbent_version is None:
            theirs = "no previous holder"
        else:
            theirs = (
                f"v{self.incumbent_version}: {self.incumbent_test_balanced_accuracy:.3f} "
                "on the same test split"
            )
        verdict = (
            f"'{self.alias}' -> v{self.version}"
            if self.promoted
            else f"'{self.alias}' set on v{self.version}"
        )
        return f"{verdict}. {ours}; {theirs}. {self.reason}"


def _download_config(client: MlflowClient, run_id: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = client.download_artifacts(run_id, "config.json", tmp)
        return json.loads(Path(path).read_text())


def load_classifier(client: MlflowClient, run_id: str) -> Any:
    """The trained classifier logged by a run (the pyfunc's own artifact)."""
    from speechprint.classifier import AccentClassifier
    from speechprint.pyfunc import CLASSIFIER_ARTIFACT

    with tempfile.TemporaryDirectory() as tmp:
        local = Path(client.download_artifacts(run_id, "model", tmp))
        candidates = sorted((local / "artifacts").glob(f"*{CLASSIFIER_ARTIFACT}*"))
        if not candidates:
            raise ConfigError(f"run {run_id} has no classifier in its model artifacts")
        return AccentClassifier.load(candidates[0])


def evaluate_on_test(
    client: MlflowClient, run_id: str, *, archive: str | None = None, jobs: int | None = None
) -> tuple[dict[str, Any], str, Any]:
    """Score a run's model on the test split of its own data configuration."""
    from speechprint.prepare import prepare_data
    from speechprint.train import RunConfig, evaluate_split

    config = RunConfig.from_dict(_download_config(client, run_id))
    if archive is not None:
        config.archive = str(archive)
    config.jobs = jobs
    dataset, features = prepare_data(config)
    classifier = load_classifier(client, run_id)
    metrics = evaluate_split(classifier, dataset, features, "test")
    return metrics, dataset.fingerprint, classifier


def promote(
    study_name: str,
    *,
    storage: str | None = None,
    model_name: str = DEFAULT_MODEL_NAME,
    alias: str = DEFAULT_ALIAS,
    archive: str | None = None,
    jobs: int | None = None,
    trial: int | None = None,
) -> Promotion:
    """Register the study's best trial (or ``trial``) and move ``alias`` to it only if it wins on
    test. Naming a trial is for putting a baseline's test score on record beside the champion."""
    from speechprint.metrics import plot_confusion

    study = load_study(study_name, storage)
    best = _chosen_trial(study, study_name, trial)
    run_id = best.user_attrs.get("mlflow_run_id")
    if not run_id:
        raise ConfigError(f"trial {best.number} of {study_name!r} has no MLflow run id")
    client = tracking.client()
    tracking.check_reachable(client)

    existing = _version_of_run(client, model_name, run_id)
    if existing is not None:
        test = json.loads(existing.tags.get("test_metrics", "{}"))
        fingerprint = existing.tags.get("data_fingerprint", "")
        new_version = False
        version = existing
    else:
        test, fingerprint, _ = evaluate_on_test(client, run_id, archive=archive, jobs=jobs)
        tracker = tracking.MLflowTracker(client, run_id)
        low, high = test["balanced_accuracy_ci"]
        tracker.log_metrics(
            {f"test/{k}": v for k, v in test.items() if isinstance(v, int | float)}
            | {
                "test/balanced_accuracy_ci_low": low,
                "test/balanced_accuracy_ci_high": high,
                "test/majority_accuracy": test["majority_baseline"]["accuracy"],
            }  # fmt: skip
        )
        tracker.log_dict(test, "test_metrics.json")
        tracker.log_figure(
            plot_confusion(test["confusion"], test["labels"], normalized=True, title="test"),
            "confusion_test.png",
        )
        _ensure_registered_model(client, model_name)
        tags = {
            "study": study_name,
            "trial": str(best.number),
            "selected_by": "best validation" if trial is None else "named on the command line",
            "run_id": run_id,
            "extractor": best.user_attrs.get("extractor", ""),
            "model": best.user_attrs.get("model", ""),
            "val_balanced_accuracy": f"{best.value:.4f}",
            "val_macro_f1": f"{best.user_attrs.get('val_macro_f1', float('nan')):.4f}",
            "test_balanced_accuracy": f"{test['balanced_accuracy']:.4f}",
            "test_balanced_accuracy_ci95": f"{low:.4f}-{high:.4f}",
            "test_macro_f1": f"{test['macro_f1']:.4f}",
            "data_fingerprint": fingerprint,
            "labels": json.dumps(list(test["labels"])),
            "test_metrics": json.dumps(_compact(test))[:5000],
        }
        version = client.create_model_version(
            model_name, f"runs:/{run_id}/model", run_id=run_id, tags=tags,
            description=f"Best trial {best.number} of study {study_name}",
        )  # fmt: skip
        client.set_tag(run_id, "registered_as", f"{model_name} v{version.version}")
        new_version = True

    ours = float(test["balanced_accuracy"])
    interval = tuple(test.get("balanced_accuracy_ci", (float("nan"), float("nan"))))
    incumbent = _alias_holder(client, model_name, alias)
    incumbent_score: float | None = None
    if incumbent is not None and incumbent.version == version.version:
        promoted, held, reason = True, alias, f"v{version.version} already holds '{alias}'."
        incumbent = None
    else:
        if incumbent is not None:
            incumbent_score = _score_on_split(client, incumbent, fingerprint, archive, jobs, test)
        if incumbent is None or incumbent_score is None or ours > incumbent_score:
            client.set_registered_model_alias(model_name, alias, version.version)
            promoted, held = True, alias
            reason = (
                "first model under this alias."
                if incumbent is None
                else "it beats the previous holder on test balanced accuracy."
                if incumbent_score is not None
                else "the previous holder was trained for other labels, so it cannot be compared."
            )
        else:
            client.set_registered_model_alias(model_name, CHALLENGER_ALIAS, version.version)
            promoted, held = False, CHALLENGER_ALIAS
            reason = (
                f"it does not beat v{incumbent.version} on test balanced accuracy, "
                f"so '{alias}' stays on v{incumbent.version}."
            )
    return Promotion(
        model_name=model_name,
        version=str(version.version),
        alias=held,
        promoted=promoted,
        new_version=new_version,
        test_balanced_accuracy=ours,
        test_interval=(float(interval[0]), float(interval[1])),
        incumbent_version=None if incumbent is None else str(incumbent.version),
        incumbent_test_balanced_accuracy=incumbent_score,
        reason=reason,
        run_id=run_id,
        test_metrics=test,
    )


def _chosen_trial(study: Any, study_name: str, number: int | None) -> Any:
    import optuna

    if number is None:
        try:
            return study.best_trial
        except ValueError:
            raise ConfigError(f"study {study_name!r} has no completed trial to promote") from None
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    if number not in by_number:
        raise ConfigError(f"study {study_name!r} has no trial {number} (it has {len(by_number)})")
    chosen = by_number[number]
    if chosen.state != optuna.trial.TrialState.COMPLETE:
        raise ConfigError(
            f"trial {number} of {study_name!r} is {chosen.state.name}: only a COMPLETE trial "
            "has a model to promote"
        )
    return chosen


def _compact(metrics: dict[str, Any]) -> dict[str, Any]:
    keep = ("balanced_accuracy", "balanced_accuracy_ci", "accuracy", "macro_f1", "top3_accuracy",
            "chance", "majority_baseline", "per_class_recall", "n")  # fmt: skip
    return {k: metrics[k] for k in keep if k in metrics}


def _ensure_registered_model(client: MlflowClient, name: str) -> None:
    try:
        client.get_registered_model(name)
    except Exception:  # noqa: BLE001 - MLflow raises RestException for "not found"
        client.create_registered_model(
            name,
            description="SpeechPrint accent classifier: audio files in, region probabilities out.",
        )


def _version_of_run(client: MlflowClient, name: str, run_id: str) -> Any | None:
    try:
        versions = client.search_model_versions(f"name='{name}' and run_id='{run_id}'")
    except Exception:  # noqa: BLE001 - no registered model yet
        return None
    return versions[0] if versions else None


def _alias_holder(client: MlflowClient, name: str, alias: str) -> Any | None:
    try:
        return client.get_model_version_by_alias(name, alias)
    except Exception:  # noqa: BLE001 - alias not set yet
        return None


def _score_on_split(
    client: MlflowClient,
    incumbent: Any,
    fingerprint: str,
    archive: str | None,
    jobs: int | None,
    our_test: dict[str, Any],
) -> float | None:
    """The incumbent's test balanced accuracy on *our* test split (None if not comparable)."""
    if incumbent.tags.get("data_fingerprint") == fingerprint:
        return float(incumbent.tags["test_balanced_accuracy"])
    if json.loads(incumbent.tags.get("labels", "[]")) != list(our_test["labels"]):
        return None
    # Different split of the same labels: score the incumbent's model on our test files.
    from speechprint.metrics import evaluate

    classifier = load_classifier(client, incumbent.run_id)
    paths = our_test["files"]
    probabilities, errors = classifier.predict_proba_files(paths)
    kept = [i for i, p in enumerate(paths) if p not in errors]
    y_true = [our_test["y_true"][i] for i in kept]
    return float(evaluate(y_true, probabilities, list(our_test["labels"]))["balanced_accuracy"])
