"""Fixed experiments (``experiments/*.yaml``): one run config, logged to MLflow like a trial.

The file is a small override layer over ``RunConfig``'s defaults, checked strictly (unknown keys
at any depth, unknown names and parameters are errors naming the file and key path) before any run.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from speechprint.core.config import StrictModel, load_yaml, parse
from speechprint.core.errors import ConfigError
from speechprint.features import FEATURES, check_extractor_params, make_extractor
from speechprint.models import MODELS, check_model_params, incompatibility
from speechprint.tracking import store as tracking
from speechprint.tracking.runs import open_run
from speechprint.train import Component, DataSpec, Result, RunConfig, TrainConfig, run
from speechprint.train.cv import cross_validate
from speechprint.train.prepare import check_data, prepare_data

DEFAULT_EXPERIMENT = "experiments"


class ExperimentSpec(StrictModel):
    """An experiment file."""

    name: str = ""
    experiment: str = DEFAULT_EXPERIMENT  # the MLflow experiment the run goes to
    description: str = ""
    data: DataSpec
    extractor: Component
    model: Component
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluate_test: bool = True


def load_experiment(path: str | Path, *, archive: str | None = None) -> tuple[str, RunConfig]:
    """Read and check an experiment file; ``archive`` overrides ``data.archive``."""
    raw = load_yaml(path)
    if archive is not None:
        raw["data"] = {**(raw.get("data") or {}), "archive": archive}
    spec = parse(ExperimentSpec, raw, source=str(path))
    _check_components(spec, str(path))
    config = RunConfig(
        **spec.data.model_dump(),
        extractor=spec.extractor.name,
        extractor_params=spec.extractor.params,
        model=spec.model.name,
        model_params=spec.model.params,
        train=spec.train,
        evaluate_test=spec.evaluate_test,
    )
    return spec.experiment, config


def _check_components(spec: ExperimentSpec, source: str) -> None:
    checks = (
        ("extractor", FEATURES, check_extractor_params),
        ("model", MODELS, check_model_params),
    )
    for key, registry, check in checks:
        component = getattr(spec, key)
        try:
            registry.get(component.name)
            check(component.name, component.params)
        except ConfigError as error:
            raise ConfigError(f"{source}: {key}: {error}") from None
        except KeyError as error:  # UnknownNameError: a SpeechPrintError and a KeyError
            raise ConfigError(f"{source}: {key}.name: {error}") from None
    extractor = make_extractor(spec.extractor.name, spec.extractor.params)
    reason = incompatibility(
        spec.model.name, spec.extractor.name, extractor.kind, extractor.layer_groups()
    )
    if reason:
        raise ConfigError(f"{source}: model: {reason}")


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
