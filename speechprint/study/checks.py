"""Checks of a parsed study file against the registries: every name must resolve.

Run by ``StudySpec.from_dict``, before any study, run or feature exists. Each error names the file
and the key path, and lists what is valid.
"""

from __future__ import annotations

import difflib
from typing import Any

from speechprint.core.errors import ConfigError
from speechprint.study.spec import Range, StudySpec


def check_names(spec: StudySpec) -> None:
    """Extractors, models, their pairs, baselines and ``space:`` overrides."""
    _check_components(spec)
    _check_every_model_has_a_pair(spec)
    from speechprint.study.space import searched_parameters

    searched = searched_parameters(spec)
    _check_space(spec, searched)
    _check_baselines(spec, searched)


def _check_components(spec: StudySpec) -> None:
    from speechprint.features import FEATURES, check_extractor_params
    from speechprint.models import MODELS

    for index, choice in enumerate(spec.extractors):
        if choice.name not in FEATURES:
            raise ConfigError(
                f"{spec.source}: extractors[{index}]: unknown extractor "
                f"{choice.name!r}{_close(choice.name, FEATURES.names())}"
            )
        try:
            check_extractor_params(choice.name, choice.params)
        except ConfigError as error:
            raise ConfigError(f"{spec.source}: extractors[{index}].params: {error}") from None
    for index, model in enumerate(spec.models):
        if model not in MODELS:
            raise ConfigError(
                f"{spec.source}: models[{index}]: unknown model "
                f"{model!r}{_close(model, MODELS.names())}"
            )


def _check_every_model_has_a_pair(spec: StudySpec) -> None:
    """A model with no compatible extractor would silently drop out of the study."""
    from speechprint.models import incompatibility

    shapes = list(zip(spec.extractors, spec.extractor_shapes(), strict=True))
    for index, model in enumerate(spec.models):
        reasons = [
            incompatibility(model, choice.key, kind, groups) for choice, (kind, groups) in shapes
        ]
        if all(reasons):
            raise ConfigError(
                f"{spec.source}: models[{index}]: {model!r} has no compatible extractor in this "
                f"study ({'; '.join(str(r) for r in reasons)}): add one or remove the model"
            )


def _check_space(spec: StudySpec, searched: dict[str, Any]) -> None:
    for name, override in spec.space.items():
        if name not in searched:
            raise ConfigError(
                f"{spec.source}: space.{name}: not a parameter this study searches"
                f"{_close(name, [n for n in searched if n != 'pair'])}"
            )
        kind = searched[name].kind
        if isinstance(override, Range) and kind == "categorical":
            raise ConfigError(
                f"{spec.source}: space.{name}: is a choice among "
                f"{list(searched[name].choices)}: give a list or one value, not a range"
            )
        if name == "pair":
            choices = override if isinstance(override, list) else [override]
            _check_pairs(spec, choices, f"space.{name}")


def _check_baselines(spec: StudySpec, searched: dict[str, Any]) -> None:
    for index, baseline in enumerate(spec.baselines):
        where = f"baselines[{index}]"
        if "pair" not in baseline:
            raise ConfigError(f"{spec.source}: {where}: needs a 'pair' among {spec.pairs()}")
        _check_pairs(spec, [baseline["pair"]], f"{where}.pair")
        for name in baseline:
            if name not in searched:
                raise ConfigError(
                    f"{spec.source}: {where}.{name}: not a parameter this study "
                    f"searches{_close(name, list(searched))}"
                )


def _check_pairs(spec: StudySpec, pairs: list[Any], where: str) -> None:
    valid = spec.pairs()
    for pair in pairs:
        if pair not in valid:
            raise ConfigError(
                f"{spec.source}: {where}: {pair!r} is not a compatible pair of this "
                f"study; valid: {', '.join(valid)}"
            )


def _close(name: str, valid: list[str]) -> str:
    match = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    hint = f"; did you mean {match[0]}?" if match else ""
    return f"{hint} (valid: {', '.join(valid)})"
