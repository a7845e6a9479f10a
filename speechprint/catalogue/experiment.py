"""Fixed experiment files (``experiments/*.yaml``): one run config, checked before any run.

The file is a small override layer over ``RunConfig``'s defaults, checked strictly (unknown keys
at any depth, unknown names and parameters are errors naming the file and key path). Light: the
names are resolved against the declarations (``speechprint.catalogue.models``) and the
extractors' dataclasses, so a typo is answered without torch, MLflow or scikit-learn.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from speechprint.catalogue.config import Component, DataSpec, RunConfig, TrainConfig
from speechprint.catalogue.models import MODELS, check_model_params, incompatibility
from speechprint.core.config import StrictModel, load_yaml, parse
from speechprint.core.errors import ConfigError
from speechprint.features import FEATURES, check_extractor_params, make_extractor

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
