"""The study file (``studies/*.yaml``): a strict schema, checked before any study or run exists.

Every key is typed; an unknown key at any depth is an error naming the file and the key path. Names
(extractors, models, baseline pairs, ``space:`` overrides) are resolved against the registries here,
so a typo never reaches Optuna or MLflow. How many epochs a trial trains is said in one place,
``train.epochs``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, model_validator

from speechprint.catalogue.config import Component, DataSpec, TrainConfig, TransferSpec
from speechprint.catalogue.models import MODELS, incompatibility
from speechprint.core.config import StrictModel, load_yaml, parse
from speechprint.core.errors import ConfigError, did_you_mean
from speechprint.features import FEATURES, check_extractor_params, make_extractor
from speechprint.study.searched import Searched, record_space

if TYPE_CHECKING:  # Optuna is imported where a sampler or pruner is built: a check needs none
    import optuna

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

    name: str  # each subclass narrows it to its own choices
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
        import optuna

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
        import optuna

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


def prune_rule(pruner: optuna.pruners.BasePruner) -> str:
    """Why ``pruner`` stopped a trial, in the words of its rule (the trial's ``prune_reason``).

    >>> import optuna
    >>> prune_rule(optuna.pruners.HyperbandPruner())
    'not in the best share of its Hyperband bracket at this step'
    """
    import optuna

    if isinstance(pruner, optuna.pruners.MedianPruner):
        return "below the median of earlier trials at this step"
    if isinstance(pruner, optuna.pruners.HyperbandPruner):
        return "not in the best share of its Hyperband bracket at this step"
    return f"stopped by the {type(pruner).__name__}"


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
    # Another corpus the promoted model must keep hearing (checked by `promote`, not by trials).
    transfer: TransferSpec | None = None
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
        check_names(spec)
        return spec

    @property
    def n_trials(self) -> int:
        return self.budget.n_trials

    def pairs(self) -> list[str]:
        """The fixed list of compatible ``extractor+model`` choices (order is stable)."""
        return [
            f"{choice.key}{PAIR_SEPARATOR}{model}"
            for choice, (kind, groups) in zip(self.extractors, self.extractor_shapes(), strict=True)
            for model in self.models
            if incompatibility(model, choice.name, kind, groups) is None
        ]

    def extractor_shapes(self) -> list[tuple[str, int | None]]:
        """Each extractor's kind and layer groups: what decides which models can take it."""
        extractors = [make_extractor(c.name, c.params) for c in self.extractors]
        return [(e.kind, e.layer_groups()) for e in extractors]

    def searched_parameters(self) -> dict[str, Searched]:
        """Every parameter the study can sample, by name (``pair`` included)."""
        return record_space(self.pairs(), self.models, self.search_training)

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


def check_options(
    *, n_trials: int | None, timeout: float | None, workers: int, jobs: int | None
) -> None:
    """A study run's command-line numbers, each a one-line ``ConfigError`` naming its option
    (here, light, so they are answered before the stack is imported)."""
    for option, value, least in (
        ("--n-trials", n_trials, 1),
        ("--workers", workers, 1),
        ("--jobs", jobs, 1),
    ):
        if value is not None and value < least:
            raise ConfigError(f"{option} must be at least {least}, got {value}")
    if timeout is not None and not timeout > 0:
        raise ConfigError(f"--timeout must be a positive number of seconds, got {timeout}")


# -- checks of a parsed study file against the registries: every name must resolve -------------
# Run by ``from_dict``, before any study, run or feature exists; each error names the file and
# the key path, and lists what is valid.
def check_names(spec: StudySpec) -> None:
    """Extractors, models, their pairs, baselines and ``space:`` overrides."""
    _check_components(spec)
    _check_every_model_has_a_pair(spec)
    searched = spec.searched_parameters()
    _check_space(spec, searched)
    _check_baselines(spec, searched)


def _check_components(spec: StudySpec) -> None:
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
    return f"{did_you_mean(name, valid)} (valid: {', '.join(valid)})"
