"""Fixed experiments (``experiments/*.yaml``): one run config, logged to MLflow like a trial.

The file and its data are checked (``speechprint.catalogue.experiment``, light) before any run.
"""

from __future__ import annotations

from pathlib import Path

from speechprint.catalogue.dataset import check_data
from speechprint.catalogue.experiment import DEFAULT_EXPERIMENT, ExperimentSpec, load_experiment
from speechprint.tracking import store as tracking
from speechprint.tracking.runs import open_run
from speechprint.train import Result, run
from speechprint.train.cv import cross_validate
from speechprint.train.prepare import prepare_data

__all__ = ["DEFAULT_EXPERIMENT", "ExperimentSpec", "load_experiment", "run_experiment"]


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
    check_data(config, source=str(path))  # before any MLflow run: a retry adds none
    config.jobs, config.cache_dir = jobs, cache_dir
    client = tracking.client()
    tracking.check_reachable(client)
    tags = {
        "kind": "experiment",
        "experiment_file": str(path),
        "extractor": config.extractor,
        "model": config.model,
    }
    with open_run(client, experiment, run_name=Path(path).stem, tags=tags) as tracker:
        tracker.log_params(config.to_dict())
        data = prepare_data(config)
        cv_result = None
        if cv is not None:
            cv_result = cross_validate(config, data, folds=cv[0], repeats=cv[1])
            tracker.log_metrics(cv_result.metrics())
        result = run(config, data, tracker)
        result.cv = cv_result
        tracker.set_tags({"data_fingerprint": result.dataset_fingerprint})
    return result, tracker.run_id
