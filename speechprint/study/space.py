"""The search space: Trial -> ``RunConfig``, with the study file's ``space:`` overrides.

Each model's space lives beside the model (``MODELS`` entries carry ``space(trial)``); the training
space is in ``searched``. A study file may pin a parameter (``mlp.hidden: 256``), narrow its choices
(``mlp.hidden: [128, 256]``) or its range (``train.lr: {low: 1e-4, high: 1e-3}``) without editing
code: ``OverriddenTrial`` applies those to every ``suggest_*`` call by parameter name.
"""

from __future__ import annotations

from typing import Any

from speechprint.models import MODELS, family
from speechprint.study.searched import suggest_training
from speechprint.study.spec import PAIR_SEPARATOR, Range, StudySpec
from speechprint.train import RunConfig


class OverriddenTrial:
    """An Optuna trial whose ``suggest_*`` calls follow the study file's ``space:`` overrides.

    >>> from optuna.trial import FixedTrial
    >>> trial = OverriddenTrial(FixedTrial({"mlp.layers": 2}), {"mlp.hidden": 256})
    >>> trial.suggest_categorical("mlp.hidden", [128, 512]), trial.suggest_int("mlp.layers", 1, 3)
    (256, 2)
    """

    def __init__(self, trial: Any, overrides: dict[str, Any]) -> None:
        self._trial = trial
        self._overrides = overrides

    def __getattr__(self, name: str) -> Any:  # report, should_prune, number, params, ...
        return getattr(self._trial, name)

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        override = self._overrides.get(name)
        if isinstance(override, list):
            return self._trial.suggest_categorical(name, override)
        if override is not None and not isinstance(override, Range):
            return override
        return self._trial.suggest_categorical(name, choices)

    def suggest_float(
        self, name: str, low: float, high: float, *, log: bool = False, step: float | None = None
    ) -> float:
        override = self._overrides.get(name)
        if isinstance(override, Range):
            log = override.log if override.log is not None else log
            step = override.step if override.step is not None else (None if log else step)
            return self._trial.suggest_float(name, override.low, override.high, log=log, step=step)
        if isinstance(override, list):
            return float(self._trial.suggest_categorical(name, override))
        if override is not None:
            return float(override)
        return self._trial.suggest_float(name, low, high, log=log, step=step)

    def suggest_int(
        self, name: str, low: int, high: int, *, step: int = 1, log: bool = False
    ) -> int:
        override = self._overrides.get(name)
        if isinstance(override, Range):
            step = int(override.step) if override.step is not None else step
            log = override.log if override.log is not None else log
            return self._trial.suggest_int(
                name, int(override.low), int(override.high), step=step, log=log
            )
        if isinstance(override, list):
            return int(self._trial.suggest_categorical(name, override))
        if override is not None:
            return int(override)
        return self._trial.suggest_int(name, low, high, step=step, log=log)


def base_config(spec: StudySpec, extractor: str, model: str) -> RunConfig:
    """The run configuration every trial of ``extractor+model`` starts from (``extractor`` is
    the pair's key: the extractor's label, else its name)."""
    choice = spec.extractor(extractor)
    return RunConfig(
        **spec.data.model_dump(),
        extractor=choice.name,
        extractor_params=dict(choice.params),
        model=model,
        train=spec.train.model_copy(),
    )


def extractor_key(spec: StudySpec, config: RunConfig) -> str:
    """The key (label, else name) of the study's extractor that ``config`` uses."""
    return next(
        c.key
        for c in spec.extractors
        if c.name == config.extractor and c.params == config.extractor_params
    )


def suggest_config(trial: Any, spec: StudySpec) -> RunConfig:
    """Trial -> RunConfig. Works with ``optuna.trial.FixedTrial`` in tests."""
    trial = OverriddenTrial(trial, spec.space)
    pair = trial.suggest_categorical("pair", spec.pairs())
    extractor, model = pair.split(PAIR_SEPARATOR)
    config = base_config(spec, extractor, model)
    entry = MODELS.get(model)
    config.model_params = entry.space(trial) if entry.space else {}
    if spec.search_training and family(model) == "torch":
        config.train = config.train.model_copy(update=suggest_training(trial))
    return config
