"""The study file (``studies/*.yaml``): a strict schema, checked before any study or run exists.

Every key is typed; an unknown key at any depth is an error naming the file and the key path. Names
(extractors, models, baseline pairs, ``space:`` overrides) are resolved against the registries here,
so a typo never reaches Optuna or MLflow. How many epochs a trial trains is said in one place,
``train.epochs``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import optuna
from pydantic import Field, model_validator

from speechprint.core.config import StrictModel, load_yaml, parse
from speechprint.core.errors import ConfigError
from speechprint.train.config import Component, DataSpec, TrainConfig

PAIR_SEPARATOR = "+"


class ExtractorChoice(Component):
    """An extractor a study searches. ``label`` names it in pairs (``<label>+<model>``) when the
    same extractor appears twice with other parameters (every layer and the final layer)."""

    label: str = Field("", pattern=r"^[A-Za-z0-9_.-]*$")

    @property
    def key(self) -> str:
        return self.label or self.name


class Budget(StrictModel):
    n_trials: int = Field(20, ge=1)
    timeout: float | None = Field(None, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _epochs_moved(cls, data: Any) -> Any:
        if isinstance(data, dict) and "epochs" in data:
            raise ValueError("'epochs' is not a budget setting: set train.epochs (one place)")
        return data


class _Choice(StrictModel):
    """Settings that belong to one ``name`` only: the others are an error, not ignored."""

    SETTINGS: ClassVar[dict[str, set[str]]] = {}

    @model_validator(mode="after")
    def _settings_of_name(self) -> _Choice:
        name = self.name
        foreign = sorted(self.model_fields_set - self.SETTINGS[name] - {"name"})
        if foreign:
            raise ValueError(f"{', '.join(foreign)}: not a setting of the {name!r} choice")
        return self


class SamplerSpec(_Choice):
    name: Literal["tpe", "random"] = "tpe"
    seed: int | None = 0
    n_startup_trials: int = Field(8, ge=0)
    multivariate: bool = True
    group: bool = True  # conditional spaces (model branches)
    SETTINGS: ClassVar[dict[str, set[str]]] = {
        "tpe": {"seed", "n_startup_trials", "multivariate", "group"},
        "random": {"seed"},
    }

    def build(self, seed: int | None = None) -> optuna.samplers.BaseSampler:
        seed = self.seed if seed is None else seed
        if self.name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        return optuna.samplers.TPESampler(
            seed=seed,
            multivariate=self.multivariate,
            group=self.group,
            constant_liar=True,  # parallel workers should not all try the same point
            n_startup_trials=self.n_startup_trials,
        )


class PrunerSpec(_Choice):
    name: Literal["median", "hyperband", "none"] = "median"
    n_startup_trials: int = Field(5, ge=0)
    n_warmup_steps: int = Field(5, ge=0)
    min_resource: int = Field(3, ge=1)
    max_resource: int | Literal["auto"] = "auto"
    reduction_factor: int = Field(3, ge=2)
    SETTINGS: ClassVar[dict[str, set[str]]] = {
        "median": {"n_startup_trials", "n_warmup_steps"},
        "hyperband": {"min_resource", "max_resource", "reduction_factor"},
        "none": set(),
    }

    def build(self) -> optuna.pruners.BasePruner:
        if self.name == "median":
            return optuna.pruners.MedianPruner(
                n_startup_trials=self.n_startup_trials, n_warmup_steps=self.n_warmup_steps
            )
        if self.name == "hyperband":
            return optuna.pruners.HyperbandPruner(
                min_resource=self.min_resource,
                max_resource=self.max_resource,
                reduction_factor=self.reduction_factor,
            )
        return optuna.pruners.NopPruner()


class CVSpec(StrictModel):
    """Score each trial by repeated stratified k-fold over the development speakers."""

    folds: int = Field(5, ge=2)
    repeats: int = Field(1, ge=1)
    seeds: int = Field(1, ge=1)  # model seeds per fold (deep models vary with their seed)


class Range(StrictModel):
    """A narrowed numeric range for one searched parameter (``space:`` in a study file)."""

    low: float
    high: float
    log: bool | None = None
    step: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) is above high ({self.high})")
        return self


Override = Range | list[Any] | str | int | float | bool  # range | choices | pinned value


class StudySpec(StrictModel):
    """A study file. ``source`` is where it came from, for messages (not a key of the file)."""

    name: str = Field(min_length=1)
    description: str = ""
    data: DataSpec
    extractors: list[ExtractorChoice] = Field(min_length=1)
    models: list[str] = Field(min_length=1)
    budget: Budget = Field(default_factory=Budget)
    train: TrainConfig = Field(default_factory=TrainConfig)
    search_training: bool = True
    sampler: SamplerSpec = Field(default_factory=SamplerSpec)
    pruner: PrunerSpec = Field(default_factory=PrunerSpec)
    cv: CVSpec | None = None
    # Trials run first, whatever the sampler says: e.g. {pair: whisper_encoder+logreg}, the
    # baseline every other trial is compared against (parameters not given are sampled).
    baselines: list[dict[str, Any]] = Field(default_factory=list)
    space: dict[str, Override] = Field(default_factory=dict)
    storage: str | None = None
    source: str = Field("<dict>", exclude=True)

    @classmethod
    def from_yaml(cls, path: str | Path) -> StudySpec:
        return cls.from_dict(load_yaml(path), source=str(path))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, source: str = "<dict>") -> StudySpec:
        """Parse and check every name; errors name ``source`` and the key path."""
        if "source" in raw:
            raise ConfigError(f"{source}: source: unknown key")
        spec = parse(cls, {**raw, "source": source}, source=source)
        from speechprint.study.checks import check_names

        check_names(spec)
        return spec

    @property
    def n_trials(self) -> int:
        return self.budget.n_trials

    def pairs(self) -> list[str]:
        """The fixed list of compatible ``extractor+model`` choices (order is stable)."""
        from speechprint.models import incompatibility

        return [
            f"{choice.key}{PAIR_SEPARATOR}{model}"
            for choice, (kind, groups) in zip(self.extractors, self.extractor_shapes(), strict=True)
            for model in self.models
            if incompatibility(model, choice.name, kind, groups) is None
        ]

    def extractor_shapes(self) -> list[tuple[str, int | None]]:
        """Each extractor's kind and layer groups: what decides which models can take it."""
        from speechprint.features import make_extractor

        extractors = [make_extractor(c.name, c.params) for c in self.extractors]
        return [(e.kind, e.layer_groups()) for e in extractors]

    def extractor(self, key: str) -> ExtractorChoice:
        """The extractor a pair names by its ``key`` (label, else name)."""
        return next(c for c in self.extractors if c.key == key)

    @model_validator(mode="after")
    def _distinct_extractors(self) -> StudySpec:
        keys = [choice.key for choice in self.extractors]
        twice = sorted({key for key in keys if keys.count(key) > 1})
        if twice:
            raise ValueError(f"extractors: {', '.join(twice)} appears twice: give each a label")
        return self

    def with_archive(self, archive: str | None) -> StudySpec:
        """The same study reading another archive folder (``--archive``)."""
        if archive is None:
            return self
        return self.model_copy(update={"data": self.data.model_copy(update={"archive": archive})})
