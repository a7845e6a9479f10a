"""Fixed experiments (``experiments/*.yaml``): one run config, logged to MLflow like a trial."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from speechprint import tracking
from speechprint.cv import cross_validate
from speechprint.prepare import prepare_data
from speechprint.train import Result, RunConfig, run

DEFAULT_EXPERIMENT = "experiments"


def load_experiment(path: str | Path, *, archive: str | None = None) -> tuple[str, RunConfig]:
    """Read an experiment file: a small override layer over ``RunConfig``'s defaults.

    Layout: ``name``, ``experiment`` (MLflow experiment, default "experiments"), ``data``
    (archive, target, min_count, seed, ...), ``extractor`` and ``model`` (name + params),
    ``train`` (TrainConfig overrides) and ``evaluate_test``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"experiment file not found: {path}")
    raw: dict[str, Any] = yaml.safe_load(path.read_text()) or {}
    known = {"name", "experiment", "description", "data", "extractor", "model", "train",
             "evaluate_test"}  # fmt: skip
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"{path}: unknown field(s) {unknown}; valid: {sorted(known)}")
    for required in ("extractor", "model"):
        if required not in raw:
            raise ValueError(f"{path}: missing required field {required!r}")
    data = dict(raw.get("data") or {})
    if archive is not None:
        data["archive"] = archive
    if "archive" not in data:
        raise ValueError(f"{path}: no archive: set data.archive or pass --archive")
    extractor, model = _component(raw["extractor"]), _component(raw["model"])
    config = RunConfig.from_dict(
        {
            **data,
            "extractor": extractor["name"],
            "extractor_params": extractor.get("params", {}),
            "model": model["name"],
            "model_params": model.get("params", {}),
            "train": raw.get("train") or {},
            "evaluate_test": bool(raw.get("evaluate_test", True)),
        }
    )
    return str(raw.get("experiment", DEFAULT_EXPERIMENT)), config


def _component(value: str | dict[str, Any]) -> dict[str, Any]:
    return {"name": value} if isinstance(value, str) else dict(value)


def run_experiment(
    path: str | Path,
    *,
    archive: str | None = None,
    jobs: int | None = None,
    cache_dir: str | None = None,
    cv: tuple[int, int] | None = None,
) -> tuple[Result, str]:
    """Run one experiment file and log it as one MLflow run; returns the result and run id.

    With ``cv=(folds, repeats)`` the configuration is also scored by repeated stratified k-fold
    on the train+val speakers (``result.cv``), logged as ``cv/*`` metrics.
    """
    experiment, config = load_experiment(path, archive=archive)
    if not Path(config.archive).exists():
        raise FileNotFoundError(f"archive not found: {config.archive}")
    config.jobs, config.cache_dir = jobs, cache_dir
    client = tracking.client()
    tracking.check_reachable(client)
    tracker = tracking.MLflowTracker.start(
        client,
        experiment,
        run_name=Path(path).stem,
        tags={
            "kind": "experiment",
            "experiment_file": str(path),
            "extractor": config.extractor,
            "model": config.model,
        },  # fmt: skip
    )
    tracker.log_params(config.to_dict())
    try:
        data = prepare_data(config)
        cv_result = None
        if cv is not None:
            cv_result = cross_validate(config, data, folds=cv[0], repeats=cv[1])
            tracker.log_metrics(cv_result.metrics())
        result = run(config, data, tracker)
        result.cv = cv_result
    except BaseException as error:
        tracker.set_tags({"fail_reason": f"{type(error).__name__}: {error}"[:5000]})
        tracker.end("FAIL")
        raise
    tracker.set_tags({"data_fingerprint": result.dataset_fingerprint})
    tracker.end("COMPLETE")
    return result, tracker.run_id
