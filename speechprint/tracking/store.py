"""MLflow: the one way SpeechPrint logs.

Everything goes through an explicit ``MlflowClient`` and run ids (no global active run), so the
same code serves a single process, several workers and a remote tracking server.

Layout: one experiment per study name, one parent run per ``study run`` invocation, one nested
child run per trial named ``trial-NNNN``. Fixed experiments log one top-level run.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import mlflow
from mlflow import MlflowClient
from mlflow.entities import RunStatus

from speechprint.core.errors import ServiceError
from speechprint.inference.pyfunc import save_pyfunc

# Optuna trial states -> MLflow run statuses (the `state` tag keeps Optuna's own word).
RUN_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}


# What every trial of a study logs as its objective: the kept model's validation balanced
# accuracy (``train.evaluate.log_best``), or the k-fold mean when the study scores by ``cv``
# (``cv.CVResult.metrics``). The experiment declares it as its primary metric.
VAL_METRIC = "best/val_balanced_accuracy"
CV_METRIC = "cv/balanced_accuracy_mean"
PRIMARY_METRIC_TAG = "mlflow.experiment.primaryMetric.name"


def objective_metric(*, cross_validated: bool) -> str:
    """The metric each trial of a study logs as its objective (what its experiment declares)."""
    return CV_METRIC if cross_validated else VAL_METRIC


def experiment_tags(primary_metric: str = VAL_METRIC) -> dict[str, str]:
    """Tags that mark a model-training experiment and the metric its trials optimise.

    MLflow 3.17's UI leads its chart view with the primary metric. Its landing page ignores the
    kind tag while the UI's workflow switch is on (always, in 3.17): see ``ui_link``.
    """
    return {
        "mlflow.experimentKind": "custom_model_development",
        PRIMARY_METRIC_TAG: primary_metric,
        "mlflow.experiment.primaryMetric.greaterIsBetter": "true",
    }


def ui_link(server: str, experiment: str, metric: str = VAL_METRIC) -> str:
    """The MLflow UI link that opens ``experiment`` on its runs table, trials flat, best first.

    MLflow 3.17's UI takes the workflow (GenAI or model training) from the link's
    ``workflowType``, else from the browser's localStorage ``mlflow.workflowType_v1``, else GenAI,
    and opens a GenAI experiment on its overview. Its runs table nests child runs (collapsed)
    under their parent only when sorted by start time with no filter: a metric sort lists them.
    """
    query = urlencode(
        {
            "workflowType": "machine_learning",
            "orderByKey": f"metrics.`{metric}`",
            "orderByAsc": "false",
        }
    )
    return f"{server.rstrip('/')}/#/experiments/{experiment}/runs?{query}"


def study_link(mlflow_client: MlflowClient, study: str, server: str) -> str | None:
    """``ui_link`` of ``study``'s experiment sorted by the metric it declares; None if absent."""
    experiment = mlflow_client.get_experiment_by_name(study)
    if experiment is None:
        return None
    metric = experiment.tags.get("mlflow.experiment.primaryMetric.name", VAL_METRIC)
    return ui_link(server, experiment.experiment_id, metric)


class TrackingError(ServiceError):
    """The tracking store cannot be reached or used."""


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else a SQLite store in the working directory.

    MLflow 3's plain ``./mlruns`` file store refuses to start and has no model registry, hence SQLite.
    """
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def artifact_root() -> str | None:
    """Where new experiments put artifacts for local stores: ``./mlruns`` (or an override).

    For a tracking server (http URI) the server decides, so we return None.
    """
    if tracking_uri().startswith(("http://", "https://", "databricks")):
        return None
    root = os.environ.get("SPEECHPRINT_ARTIFACT_ROOT") or str(Path.cwd() / "mlruns")
    return Path(root).resolve().as_uri()


def client() -> MlflowClient:
    """A client on the project's tracking store (set here, at call time, never at import)."""
    uri = tracking_uri()
    # Per-file download bars flood the terminal when models are loaded or promoted.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def check_reachable(mlflow_client: MlflowClient) -> None:
    """Fail fast, before any training, when the tracking store is down or unusable.

    A server gets a plain GET of ``/health`` first: MLflow's own HTTP client retries a refused
    connection for minutes before giving up.
    """
    uri = tracking_uri()
    if uri.startswith(("http://", "https://")):
        _check_health(uri)
    try:
        mlflow_client.search_experiments(max_results=1)
    except Exception as error:  # noqa: BLE001 - any failure here means "cannot track"
        raise TrackingError(
            f"cannot reach the MLflow tracking store at {tracking_uri()}: "
            f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        ) from error


def _check_health(uri: str) -> None:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=10):
            pass
    except urllib.error.HTTPError:
        pass  # something answers (a proxy without /health?): let MLflow's call judge it
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise TrackingError(
            f"cannot reach the MLflow tracking server at {uri}: {reason}; start it "
            "(see docs/SCALING.md) or point MLFLOW_TRACKING_URI at a running one"
        ) from error


def experiment_id(
    mlflow_client: MlflowClient, name: str, *, primary_metric: str | None = None
) -> str:
    """Get or create the experiment called ``name``.

    ``primary_metric`` (a study's objective metric) is declared on a new experiment, and on an
    existing one whose tags say otherwise; without it a new experiment declares ``VAL_METRIC``.
    """
    existing = mlflow_client.get_experiment_by_name(name)
    if existing is not None:
        if primary_metric is not None:
            _declare(mlflow_client, existing, experiment_tags(primary_metric))
        return existing.experiment_id
    root = artifact_root()
    location = f"{root}/{name}" if root else None
    tags = experiment_tags(primary_metric or VAL_METRIC)
    try:
        return mlflow_client.create_experiment(name, artifact_location=location, tags=tags)
    except Exception:  # another worker created it between our get and create
        existing = mlflow_client.get_experiment_by_name(name)
        if existing is None:
            raise
        return existing.experiment_id


def _declare(mlflow_client: MlflowClient, experiment: Any, tags: dict[str, str]) -> None:
    for key, value in tags.items():
        if experiment.tags.get(key) != value:
            mlflow_client.set_experiment_tag(experiment.experiment_id, key, value)


@lru_cache(maxsize=1)
def git_commit() -> str:
    """The commit of the code being run ("unknown" outside a git checkout)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _flatten(params: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, prefix=f"{name}."))
        else:
            flat[name] = json.dumps(value) if isinstance(value, list | tuple) else str(value)
    return flat


class MLflowTracker:
    """The Tracker (see ``tracking_base``) that writes to one MLflow run."""

    def __init__(self, mlflow_client: MlflowClient, run_id: str) -> None:
        self.client = mlflow_client
        self.run_id = run_id

    # -- runs -------------------------------------------------------------------------------
    @classmethod
    def start(
        cls,
        mlflow_client: MlflowClient,
        experiment: str,
        *,
        run_name: str,
        parent_run_id: str | None = None,
        tags: dict[str, Any] | None = None,
        primary_metric: str | None = None,
    ) -> MLflowTracker:
        """A new run; ``primary_metric``: see ``experiment_id`` (a study's parent run passes it)."""
        all_tags = {"git_commit": git_commit(), **{k: str(v) for k, v in (tags or {}).items()}}
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        run = mlflow_client.create_run(
            experiment_id(mlflow_client, experiment, primary_metric=primary_metric),
            run_name=run_name,
            tags=all_tags,
        )
        return cls(mlflow_client, run.info.run_id)

    def end(self, state: str = "COMPLETE") -> None:
        """Close the run; ``state`` is an Optuna state word (COMPLETE, PRUNED, FAIL)."""
        self.client.set_tag(self.run_id, "state", state)
        self.client.set_terminated(self.run_id, status=RUN_STATUS.get(state, "FINISHED"))

    @property
    def is_open(self) -> bool:
        status = self.client.get_run(self.run_id).info.status
        return status == RunStatus.to_string(RunStatus.RUNNING)

    # -- the Tracker protocol -----------------------------------------------------------------
    def log_params(self, params: dict[str, Any]) -> None:
        flat = _flatten(params)
        # MLflow caps a batch at 100 params and a value at 6000 characters.
        items = [mlflow.entities.Param(k, v[:6000]) for k, v in sorted(flat.items())]
        for start in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[start : start + 100])

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        import time

        now = int(time.time() * 1000)
        entries = [
            mlflow.entities.Metric(name, float(value), now, step or 0)
            for name, value in metrics.items()
            if value is not None
        ]
        if entries:
            self.client.log_batch(self.run_id, metrics=entries)

    def set_tags(self, tags: dict[str, Any]) -> None:
        self.client.log_batch(
            self.run_id, tags=[mlflow.entities.RunTag(k, str(v)) for k, v in tags.items()]
        )

    def log_dict(self, obj: Any, artifact_file: str) -> None:
        self.client.log_dict(self.run_id, obj, artifact_file)

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    def log_figure(self, figure: Any, artifact_file: str) -> None:
        import matplotlib.pyplot as plt

        self.client.log_figure(self.run_id, figure, artifact_file)
        plt.close(figure)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_classifier(self, classifier: Any) -> None:
        """Log the trained classifier as a self-contained pyfunc model under ``model/``."""
        with tempfile.TemporaryDirectory() as tmp:
            save_pyfunc(classifier, Path(tmp) / "model")
            self.client.log_artifacts(self.run_id, str(Path(tmp) / "model"), "model")

    @property
    def model_uri(self) -> str:
        return f"runs:/{self.run_id}/model"
