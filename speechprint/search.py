"""Optuna studies: a study file -> trials -> ``run(config)`` -> MLflow.

The chain is Trial -> ``suggest_config`` -> ``RunConfig`` -> ``run(config, tracker)`` -> Result.
Incompatible extractor/model pairs are never sampled: the top-level choice is a fixed list of
compatible ``extractor+model`` pairs, and each model's own search space (declared beside the model)
is sampled only in its branch.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import TrialState

from speechprint import tracking
from speechprint.cv import cross_validate
from speechprint.features import FEATURES
from speechprint.models import MODELS, compatible
from speechprint.train import (
    NonFiniteLossError,
    RunConfig,
    TrainConfig,
    prepare_data,
    run,
)

PAIR_SEPARATOR = "+"
FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)


class StudySpecError(ValueError):
    """A study file that cannot be run; the message names the file and field."""


@dataclass
class ExtractorChoice:
    name: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class StudySpec:
    """A study file (``studies/*.yaml``)."""

    name: str
    data: dict[str, Any]
    extractors: list[ExtractorChoice]
    models: list[str]
    n_trials: int = 20
    timeout: float | None = None
    epochs: int = 30
    train: dict[str, Any] = field(default_factory=dict)
    search_training: bool = True
    sampler: dict[str, Any] = field(default_factory=lambda: {"name": "tpe", "seed": 0})
    pruner: dict[str, Any] = field(default_factory=lambda: {"name": "median"})
    storage: str | None = None
    cv: dict[str, int] | None = None  # {"folds": 5, "repeats": 2}: score trials by k-fold
    source: str = "<dict>"

    @classmethod
    def from_yaml(cls, path: str | Path) -> StudySpec:
        path = Path(path)
        if not path.exists():
            raise StudySpecError(f"study file not found: {path}")
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            raise StudySpecError(f"{path}: not valid YAML: {error}") from error
        return cls.from_dict(raw, source=str(path))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, source: str = "<dict>") -> StudySpec:
        known = {"name", "data", "extractors", "models", "budget", "train", "search_training",
                 "sampler", "pruner", "storage", "description", "cv"}  # fmt: skip
        unknown = sorted(set(raw) - known)
        if unknown:
            raise StudySpecError(f"{source}: unknown field(s) {unknown}; valid: {sorted(known)}")
        for required in ("name", "data", "extractors", "models"):
            if not raw.get(required):
                raise StudySpecError(f"{source}: missing required field {required!r}")
        extractors = [
            ExtractorChoice(e)
            if isinstance(e, str)
            else ExtractorChoice(e["name"], e.get("params", {}))
            for e in raw["extractors"]
        ]
        budget = raw.get("budget") or {}
        spec = cls(
            name=str(raw["name"]),
            data=dict(raw["data"]),
            extractors=extractors,
            models=list(raw["models"]),
            n_trials=int(budget.get("n_trials", 20)),
            timeout=budget.get("timeout"),
            epochs=int(budget.get("epochs", 30)),
            train=dict(raw.get("train") or {}),
            search_training=bool(raw.get("search_training", True)),
            sampler=dict(raw.get("sampler") or {"name": "tpe", "seed": 0}),
            pruner=dict(raw.get("pruner") or {"name": "median"}),
            storage=raw.get("storage"),
            cv=dict(raw["cv"]) if raw.get("cv") else None,
            source=source,
        )
        spec.validate()
        return spec

    def validate(self) -> None:
        """Every name must resolve before any work starts; errors list the valid names."""
        for choice in self.extractors:
            if choice.name not in FEATURES:
                raise StudySpecError(
                    f"{self.source}: unknown extractor {choice.name!r} in 'extractors'; "
                    f"valid names: {', '.join(FEATURES.names())}"
                )
        for model in self.models:
            if model not in MODELS:
                raise StudySpecError(
                    f"{self.source}: unknown model {model!r} in 'models'; "
                    f"valid names: {', '.join(MODELS.names())}"
                )
        if "archive" not in self.data:
            raise StudySpecError(f"{self.source}: 'data' needs an 'archive' path")
        if not self.pairs():
            raise StudySpecError(
                f"{self.source}: no extractor x model pair is compatible "
                f"(extractors {[e.name for e in self.extractors]}, models {self.models})"
            )
        unknown_train = sorted(set(self.train) - {f.name for f in dataclasses.fields(TrainConfig)})
        if unknown_train:
            raise StudySpecError(f"{self.source}: unknown 'train' field(s) {unknown_train}")

    def pairs(self) -> list[str]:
        """The fixed list of compatible ``extractor+model`` choices (order is stable)."""
        return [
            f"{choice.name}{PAIR_SEPARATOR}{model}"
            for choice in self.extractors
            for model in self.models
            if compatible(model, FEATURES.get(choice.name).obj.kind)
        ]

    def extractor_params(self, name: str) -> dict[str, Any]:
        return next(c.params for c in self.extractors if c.name == name)

    def base_config(self, extractor: str, model: str, archive: str | None = None) -> RunConfig:
        data = dict(self.data)
        if archive is not None:
            data["archive"] = str(archive)
        train = TrainConfig(**{**self.train, "epochs": self.epochs})
        return RunConfig(
            archive=str(data.pop("archive")),
            extractor=extractor,
            extractor_params=dict(self.extractor_params(extractor)),
            model=model,
            model_params={},
            train=train,
            **data,
        )


def suggest_training(trial: optuna.Trial) -> dict[str, Any]:
    """The optimiser's own space (only in torch branches: sklearn models ignore it)."""
    return {
        "lr": trial.suggest_float("train.lr", 3e-4, 5e-3, log=True),
        "weight_decay": trial.suggest_float("train.weight_decay", 1e-5, 1e-2, log=True),
        "imbalance": trial.suggest_categorical("train.imbalance", ["weighted", "sampler"]),
        "batch_size": trial.suggest_categorical("train.batch_size", [16, 32, 64]),
    }


def suggest_config(
    trial: optuna.Trial, spec: StudySpec, *, archive: str | None = None
) -> RunConfig:
    """Trial -> RunConfig. Works with ``optuna.trial.FixedTrial`` in tests."""
    pair = trial.suggest_categorical("pair", spec.pairs())
    extractor, model = pair.split(PAIR_SEPARATOR)
    config = spec.base_config(extractor, model, archive)
    entry = MODELS.get(model)
    config.model_params = entry.space(trial) if entry.space else {}
    if spec.search_training and entry.meta.get("family", "torch") == "torch":
        config.train = dataclasses.replace(config.train, **suggest_training(trial))
    return config


# -- storage -------------------------------------------------------------------------------------


def default_storage(name: str, workers: int = 1) -> str:
    """A file under ``studies/``: SQLite for one process, a journal file for several workers."""
    studies = Path("studies")
    studies.mkdir(exist_ok=True)
    if workers > 1:
        return str(studies / f"{name}.journal.log")
    return f"sqlite:///{(studies / f'{name}.db').resolve()}"


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """An RDB URL (sqlite, postgresql+psycopg, ...) or a plain file path (JournalStorage).

    Unreachable storage is a clear error here, before any training starts.
    """
    if "://" not in url:
        from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

        path = Path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        backend = JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path)))
        return optuna.storages.JournalStorage(backend)
    try:
        return optuna.storages.RDBStorage(
            url,
            engine_kwargs={"pool_pre_ping": True} if not url.startswith("sqlite") else None,
            heartbeat_interval=15,
            grace_period=60,
            failed_trial_callback=optuna.storages.RetryFailedTrialCallback(max_retry=1),
        )
    except Exception as error:  # noqa: BLE001 - any connection failure
        raise StudySpecError(
            f"cannot open the Optuna storage {_redact(url)}: {type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}"
        ) from error


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def make_sampler(config: dict[str, Any]) -> optuna.samplers.BaseSampler:
    name = config.get("name", "tpe")
    seed = config.get("seed")
    if name == "tpe":
        return optuna.samplers.TPESampler(
            seed=seed,
            multivariate=config.get("multivariate", True),
            group=config.get("group", True),  # conditional spaces (model branches)
            constant_liar=True,  # parallel workers should not all try the same point
            n_startup_trials=int(config.get("n_startup_trials", 8)),
        )
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise StudySpecError(f"unknown sampler {name!r}; valid: tpe, random")


def make_pruner(config: dict[str, Any]) -> optuna.pruners.BasePruner:
    name = config.get("name", "median")
    if name == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=int(config.get("n_startup_trials", 5)),
            n_warmup_steps=int(config.get("n_warmup_steps", 5)),
        )
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=int(config.get("min_resource", 3)),
            max_resource=config.get("max_resource", "auto"),
            reduction_factor=int(config.get("reduction_factor", 3)),
        )
    if name == "none":
        return optuna.pruners.NopPruner()
    raise StudySpecError(f"unknown pruner {name!r}; valid: median, hyperband, none")


def load_study(name: str, storage: str | None = None) -> optuna.Study:
    url = storage or default_storage(name)
    try:
        return optuna.load_study(study_name=name, storage=open_storage(url))
    except KeyError as error:
        raise StudySpecError(f"no study named {name!r} in {_redact(url)}") from error


# -- running -------------------------------------------------------------------------------------


@dataclass
class StudyOutcome:
    study: optuna.Study
    parent_run_id: str
    ran: int
    interrupted: bool = False


def count_finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED_STATES))


def close_orphan_runs(study: optuna.Study, client: Any) -> int:
    """Close MLflow runs of trials that ended without their process (killed worker).

    A trial whose run is still RUNNING in MLflow but not RUNNING in Optuna (failed by heartbeat,
    or finished by a retry) gets the Optuna state; returns how many runs were closed.
    """
    closed = 0
    for trial in study.get_trials(deepcopy=False):
        run_id = trial.user_attrs.get("mlflow_run_id")
        if not run_id or trial.state == TrialState.RUNNING:
            continue
        try:
            status = client.get_run(run_id).info.status
        except Exception:  # noqa: BLE001 - a run deleted by hand is not our problem
            continue
        if status == "RUNNING":
            tracker = tracking.MLflowTracker(client, run_id)
            tracker.set_tags({"fail_reason": "worker stopped during the trial (stale heartbeat)"})
            tracker.end(trial.state.name if trial.state != TrialState.WAITING else "FAIL")
            closed += 1
    return closed


def run_study(
    spec: StudySpec,
    *,
    archive: str | None = None,
    n_trials: int | None = None,
    timeout: float | None = None,
    storage: str | None = None,
    jobs: int | None = None,
    cache_dir: str | None = None,
    on_trial: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None = None,
    prepared: dict[str, Any] | None = None,
) -> StudyOutcome:
    """Create or resume the study and run the trials still missing from its budget."""
    budget = n_trials if n_trials is not None else spec.n_trials
    archive_path = archive or spec.data["archive"]
    if not Path(archive_path).exists():
        raise StudySpecError(f"archive not found: {archive_path}")
    client = tracking.client()
    tracking.check_reachable(client)
    storage_url = storage or spec.storage or default_storage(spec.name)
    study = optuna.create_study(
        study_name=spec.name,
        storage=open_storage(storage_url),
        direction="maximize",
        sampler=make_sampler(spec.sampler),
        pruner=make_pruner(spec.pruner),
        load_if_exists=True,
    )
    study.set_user_attr("source", spec.source)
    closed = close_orphan_runs(study, client)
    if closed:
        print(f"closed {closed} MLflow run(s) left open by a stopped worker")

    remaining = budget - count_finished(study)
    parent = tracking.MLflowTracker.start(
        client,
        spec.name,
        run_name=f"study-{time.strftime('%Y%m%d-%H%M%S')}-{socket.gethostname()}-{os.getpid()}",
        tags={"study": spec.name, "kind": "study", "storage": _redact(storage_url)},
    )
    parent.log_params({"study_file": spec.source, "n_trials": budget, "epochs": spec.epochs,
                       "pairs": spec.pairs(), "sampler": spec.sampler, "pruner": spec.pruner})  # fmt: skip
    if remaining <= 0:
        parent.set_tags({"note": f"budget of {budget} finished trials already reached"})
        parent.end("COMPLETE")
        return StudyOutcome(study, parent.run_id, ran=0)

    # Data preparation is an explicit step: features for every extractor, once, before trials.
    prepared = prepared if prepared is not None else {}
    for choice in spec.extractors:
        if choice.name not in prepared:
            config = spec.base_config(choice.name, spec.models[0], archive)
            config.jobs, config.cache_dir = jobs, cache_dir
            prepared[choice.name] = prepare_data(config)

    objective = make_objective(spec, client, parent.run_id, prepared, archive=archive)
    callbacks: list[Callable[..., None]] = [
        optuna.study.MaxTrialsCallback(budget, states=FINISHED_STATES)
    ]
    if on_trial is not None:
        callbacks.append(on_trial)
    before = len(study.trials)
    interrupted = False
    try:
        study.optimize(
            objective,
            n_trials=remaining,
            timeout=timeout if timeout is not None else spec.timeout,
            catch=(Exception,),
            callbacks=callbacks,
            gc_after_trial=True,
        )
    except KeyboardInterrupt:
        interrupted = True
    finally:
        _log_best(parent, study)
        parent.end("FAIL" if interrupted else "COMPLETE")
    return StudyOutcome(
        study, parent.run_id, ran=len(study.trials) - before, interrupted=interrupted
    )


def _log_best(parent: tracking.MLflowTracker, study: optuna.Study) -> None:
    try:
        best = study.best_trial
    except ValueError:
        return
    parent.log_metrics({"best/val_balanced_accuracy": float(best.value)})
    parent.set_tags(
        {"best_trial": best.number, "best_run_id": best.user_attrs.get("mlflow_run_id", "")}
    )


def make_objective(
    spec: StudySpec,
    client: Any,
    parent_run_id: str,
    prepared: dict[str, Any],
    *,
    archive: str | None = None,
) -> Callable[[optuna.Trial], float]:
    """One failure policy: pruned and failed trials keep their reason; the child run is closed."""

    def objective(trial: optuna.Trial) -> float:
        config = suggest_config(trial, spec, archive=archive)
        dataset, features = prepared[config.extractor]
        tracker = tracking.MLflowTracker.start(
            client,
            spec.name,
            run_name=f"trial-{trial.number:04d}",
            parent_run_id=parent_run_id,
            tags={
                "study": spec.name,
                "trial_number": trial.number,
                "extractor": config.extractor,
                "model": config.model,
                "data_fingerprint": dataset.fingerprint,
                "worker": f"{socket.gethostname()}:{os.getpid()}",
            },
        )
        trial.set_user_attr("mlflow_run_id", tracker.run_id)
        trial.set_user_attr("extractor", config.extractor)
        trial.set_user_attr("model", config.model)
        trial.set_user_attr("data_fingerprint", dataset.fingerprint)
        tracker.log_params(config.to_dict())

        def report(epoch: int, value: float) -> None:
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(
                    f"pruned at epoch {epoch}: val balanced accuracy {value:.3f} below the median"
                )

        try:
            cv = None
            if spec.cv:
                # The objective is the k-fold mean (pruned fold by fold); the model logged for
                # promotion is still trained on the study's own train/val split.
                cv = cross_validate(config, (dataset, features), folds=int(spec.cv.get("folds", 5)),
                                    repeats=int(spec.cv.get("repeats", 2)), report=report)  # fmt: skip
                tracker.log_metrics(cv.metrics())
                for key, value in cv.metrics().items():
                    trial.set_user_attr(key.replace("/", "_"), value)
            result = run(config, tracker, report=None if cv else report,
                         features=(dataset, features))  # fmt: skip
        except optuna.TrialPruned as pruned:
            _close(trial, tracker, "PRUNED", str(pruned))
            raise
        except NonFiniteLossError as error:
            _close(trial, tracker, "PRUNED", str(error))
            raise optuna.TrialPruned(str(error)) from error
        except BaseException as error:
            reason = f"{type(error).__name__}: {error}"
            _close(trial, tracker, "FAIL", reason)
            raise
        for key in ("balanced_accuracy", "macro_f1", "accuracy"):
            trial.set_user_attr(f"val_{key}", float(result.val[key]))
        tracker.end("COMPLETE")
        return cv.mean if cv is not None else float(result.val["balanced_accuracy"])

    return objective


def _close(trial: optuna.Trial, tracker: tracking.MLflowTracker, state: str, reason: str) -> None:
    key = "fail_reason" if state == "FAIL" else "prune_reason"
    trial.set_user_attr(key, reason[:2000])
    try:
        tracker.set_tags({key: reason[:5000]})
        tracker.end(state)
    except Exception as error:  # noqa: BLE001 - never mask the trial's own error
        print(f"warning: could not close MLflow run {tracker.run_id}: {error}")
