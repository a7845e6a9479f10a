"""Optuna studies: a study file -> trials -> ``run(config)`` -> MLflow.

The chain is Trial -> ``suggest_config`` -> ``RunConfig`` -> ``run(config, tracker)`` -> Result.
Incompatible extractor/model pairs are never sampled: the top-level choice is a fixed list of
compatible ``extractor+model`` pairs, and each model's own search space (declared beside the model)
is sampled only in its branch.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import socket
import time
import urllib.error
import urllib.request
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
    # Trials run first, whatever the sampler says: e.g. {pair: whisper_encoder+logreg}, the
    # baseline every other trial is compared against (parameters not given are sampled).
    baselines: list[dict[str, Any]] = field(default_factory=list)
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
                 "sampler", "pruner", "storage", "description", "cv", "baselines"}  # fmt: skip
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
            baselines=[dict(b) for b in raw.get("baselines") or []],
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
        for baseline in self.baselines:
            if baseline.get("pair") not in self.pairs():
                raise StudySpecError(
                    f"{self.source}: baseline {baseline} needs a 'pair' among {self.pairs()}"
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
        config.train = config.train.model_copy(update=suggest_training(trial))
    return config


# -- storage -------------------------------------------------------------------------------------


def default_storage(name: str, workers: int = 1) -> str:
    """A file under ``studies/``: SQLite for one process, a journal file for several workers.

    An existing journal file wins, so a study started with ``--workers`` resumes without it.
    """
    studies = Path("studies")
    studies.mkdir(exist_ok=True)
    journal = studies / f"{name}.journal.log"
    if workers > 1 or journal.exists():
        return str(journal)
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
    engine_kwargs: dict[str, Any] | None = None
    if not url.startswith("sqlite"):
        engine_kwargs = {"pool_pre_ping": True}
        if url.startswith("postgresql"):
            # A host that drops packets would otherwise hang for the OS's TCP timeout (minutes).
            engine_kwargs["connect_args"] = {"connect_timeout": 10}
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    for attempt in range(3):
        try:
            # Heartbeats let any worker, on any machine, fail a trial whose process died; the
            # callback then closes that trial's MLflow run and queues the trial once more.
            return optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=15,
                grace_period=60,
                heartbeat_stale_trial_callback=StaleTrialCallback(max_retry=1),
            )
        except (IntegrityError, ProgrammingError) as error:
            # Machines started together on an empty database race to create Optuna's tables:
            # the loser sees "already exists"; the schema is there a moment later.
            if attempt == 2:
                raise _storage_error(url, error) from error
            time.sleep(1.0 + attempt)
        except Exception as error:  # noqa: BLE001 - any connection failure
            raise _storage_error(url, error) from error
    raise AssertionError("unreachable")


def _storage_error(url: str, error: Exception) -> StudySpecError:
    first_line = str(error).splitlines()[0] if str(error) else ""
    return StudySpecError(
        f"cannot open the Optuna storage {redact(url)}: {type(error).__name__}: {first_line}"
    )


def redact(url: str) -> str:
    """The URL without its user and password, for messages and tags."""
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
        raise StudySpecError(f"no study named {name!r} in {redact(url)}") from error


# -- running -------------------------------------------------------------------------------------


@dataclass
class StudyOutcome:
    study: optuna.Study
    parent_run_id: str
    ran: int
    interrupted: bool = False


def count_finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED_STATES))


# -- workers and stale trials --------------------------------------------------------------------
# A trial records which process runs it (user attributes ``worker_host``, ``worker_pid``,
# ``worker_start``). JournalStorage has no heartbeat, so a RUNNING trial whose process on this host
# is gone is failed by pid at (re)start and after every trial; RDB storages also get Optuna's
# heartbeat, which covers workers on other machines.


@functools.lru_cache(maxsize=1)
def worker_host() -> str:
    """This host, plus its PID namespace on Linux: two containers may share a hostname."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return f"{socket.gethostname()}{'/' + namespace if namespace else ''}"


def _process_start(pid: int) -> str | None:
    """The start time of a live process (guards against PID reuse); None if gone or a zombie.

    "" where ``/proc`` is missing (not Linux) and the process exists.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return ""
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] in ("Z", "X") else fields[19]


def this_process() -> dict[str, Any]:
    """How another process can tell whether this one still runs: host, pid, start time."""
    pid = os.getpid()
    return {
        "worker_host": worker_host(),
        "worker_pid": pid,
        "worker_start": _process_start(pid) or "",
    }


def mark_worker(trial: optuna.Trial) -> None:
    """Record the process running ``trial`` so that another process can tell when it died."""
    for key, value in this_process().items():
        trial.set_user_attr(key, value)


def _is_dead(attrs: dict[str, Any]) -> bool:
    """True only when the process ran on this host and is gone; unknown means alive."""
    if attrs.get("worker_host") != worker_host() or not attrs.get("worker_pid"):
        return False
    started = _process_start(int(attrs["worker_pid"]))
    if started is None:
        return True
    recorded = str(attrs.get("worker_start", ""))
    return bool(recorded and started and recorded != started)  # a new process with that pid


class StaleTrialCallback:
    """A trial whose worker died: close its MLflow run as FAILED, then queue it once more.

    Optuna's ``heartbeat_stale_trial_callback`` for RDB storages, and used by
    ``fail_dead_workers`` for any storage. Like Optuna's ``RetryHeartbeatStaleTrialCallback``
    (same ``failed_trial``/``retry_history`` system attributes), but the copy does not inherit the
    dead worker's user attributes (MLflow run id, worker pid).
    """

    def __init__(self, max_retry: int = 1, client: Any = None) -> None:
        self.max_retry = max_retry
        self._client = client

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        try:
            _close_orphan_run(self._client or tracking.client(), trial)
        except Exception as error:  # noqa: BLE001 - the next (re)start closes it instead
            print(f"warning: could not close the MLflow run of trial {trial.number}: {error}")
        history = [*trial.system_attrs.get("retry_history", []), trial.number]
        if len(history) > self.max_retry:
            return
        study.add_trial(
            optuna.trial.create_trial(
                state=TrialState.WAITING,
                params=trial.params,
                distributions=trial.distributions,
                system_attrs={
                    "failed_trial": trial.system_attrs.get("failed_trial", trial.number),
                    "retry_history": history,
                },
            )
        )


def fail_dead_workers(study: optuna.Study, client: Any = None) -> int:
    """Fail the RUNNING trials whose worker on this host is gone; returns how many.

    Each such trial gets a ``fail_reason``, its MLflow run is closed as FAILED and it is retried
    once. Safe to call from several processes at once: the storage lets one of them win.
    """
    storage = study._storage
    callback = StaleTrialCallback(max_retry=1, client=client)
    failed = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not _is_dead(trial.user_attrs):
            continue
        reason = (
            f"worker {trial.user_attrs['worker_host']} pid {trial.user_attrs['worker_pid']} "
            "stopped during the trial (killed or crashed)"
        )
        try:
            storage.set_trial_user_attr(trial._trial_id, "fail_reason", reason)
            if not storage.set_trial_state_values(trial._trial_id, TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another process failed it first
        failed += 1
        callback(study, storage.get_trial(trial._trial_id))
    return failed


def _close_orphan_run(client: Any, trial: optuna.trial.FrozenTrial) -> bool:
    """Close the trial's MLflow run if it is still RUNNING; the tag ``state`` gets Optuna's."""
    run_id = trial.user_attrs.get("mlflow_run_id")
    if not run_id or trial.state == TrialState.RUNNING:
        return False
    try:
        status = client.get_run(run_id).info.status
    except Exception:  # noqa: BLE001 - a run deleted by hand is not our problem
        return False
    if status != "RUNNING":
        return False
    reason = trial.user_attrs.get("fail_reason") or "worker stopped during the trial"
    tracker = tracking.MLflowTracker(client, run_id)
    tracker.set_tags({"fail_reason": reason})
    tracker.end(trial.state.name if trial.state != TrialState.WAITING else "FAIL")
    return True


def close_orphan_parents(client: Any, experiment: str) -> int:
    """Close parent runs left RUNNING by a ``study run`` process on this host that was killed."""
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return 0
    closed = 0
    for parent in client.search_runs(
        [found.experiment_id], "tags.kind = 'study'", max_results=1000
    ):
        if parent.info.status == "RUNNING" and _is_dead(parent.data.tags):
            tracker = tracking.MLflowTracker(client, parent.info.run_id)
            tracker.set_tags({"note": "the study run process stopped without closing this run"})
            tracker.end("FAIL")
            closed += 1
    return closed


def close_orphan_runs(study: optuna.Study, client: Any) -> int:
    """Close MLflow runs of trials that ended without their process (killed worker).

    A trial whose run is still RUNNING in MLflow but not RUNNING in Optuna (failed by heartbeat,
    or finished by a retry) gets the Optuna state; returns how many runs were closed.
    """
    return sum(_close_orphan_run(client, trial) for trial in study.get_trials(deepcopy=False))


# -- one invocation: service checks, parent run, features, budget -----------------------------


def check_tracking(client: Any) -> None:
    """Fail fast when the MLflow store is down: a plain GET to a server's ``/health`` first.

    MLflow's own HTTP client retries a refused connection for minutes before giving up.
    """
    uri = tracking.tracking_uri()
    if uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=10):
                pass
        except urllib.error.HTTPError:
            pass  # something answers (a proxy without /health?): let MLflow's call judge it
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise tracking.TrackingError(
                f"cannot reach the MLflow tracking server at {uri}: {reason}; start it "
                "(see docs/SCALING.md) or point MLFLOW_TRACKING_URI at a running one"
            ) from error
    tracking.check_reachable(client)


def open_study(spec: StudySpec, storage_url: str) -> tuple[Any, optuna.Study]:
    """Check MLflow, then create or load the study; trials of dead workers are cleaned up.

    Both services are checked here, before any feature extraction or training.
    """
    client = tracking.client()
    check_tracking(client)
    study = optuna.create_study(
        study_name=spec.name,
        storage=open_storage(storage_url),
        direction="maximize",
        sampler=make_sampler(spec.sampler),
        pruner=make_pruner(spec.pruner),
        load_if_exists=True,
    )
    study.set_user_attr("source", spec.source)
    for baseline in spec.baselines:
        study.enqueue_trial(baseline, skip_if_exists=True)
    failed = fail_dead_workers(study, client)
    closed = close_orphan_runs(study, client) + close_orphan_parents(client, spec.name)
    if failed or closed:
        print(f"marked {failed} trial(s) of stopped workers FAILED; closed {closed} more MLflow run(s)"
              " left open")  # fmt: skip
    return client, study


def start_parent_run(
    client: Any, spec: StudySpec, storage_url: str, budget: int, *, workers: int = 1
) -> tracking.MLflowTracker:
    """The one MLflow parent run of a ``study run`` invocation."""
    parent = tracking.MLflowTracker.start(
        client,
        spec.name,
        run_name=f"study-{time.strftime('%Y%m%d-%H%M%S')}-{socket.gethostname()}-{os.getpid()}",
        tags={
            "study": spec.name,
            "kind": "study",
            "storage": redact(storage_url),
            **this_process(),
        },  # fmt: skip
    )
    parent.log_params({"study_file": spec.source, "n_trials": budget, "epochs": spec.epochs,
                       "pairs": spec.pairs(), "sampler": spec.sampler, "pruner": spec.pruner,
                       "workers": workers})  # fmt: skip
    return parent


def finish_parent_run(parent: tracking.MLflowTracker, study: optuna.Study, state: str) -> None:
    _log_best(parent, study)
    parent.end(state)


def prepare_features(
    spec: StudySpec,
    *,
    archive: str | None = None,
    jobs: int | None = None,
    cache_dir: str | None = None,
    prepared: dict[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Data preparation, an explicit step: features for every extractor, once, before trials."""
    prepared = prepared if prepared is not None else {}
    for choice in spec.extractors:
        if choice.name not in prepared:
            config = spec.base_config(choice.name, spec.models[0], archive)
            config.jobs, config.cache_dir = jobs, cache_dir
            prepared[choice.name] = prepare_data(config, progress=progress)
    return prepared


def check_archive(spec: StudySpec, archive: str | None) -> None:
    archive_path = archive or spec.data["archive"]
    if not Path(archive_path).exists():
        raise StudySpecError(f"archive not found: {archive_path}")


def budget_callbacks(budget: int, client: Any) -> list[Callable[..., None]]:
    """After each trial: fail trials of dead local workers, then stop once the budget is covered.

    Trials still RUNNING in other workers count towards the budget, so N workers do not overshoot
    it by N-1; if one of those then fails, its own worker (still going) replaces it.
    """

    def reap(study: optuna.Study, _trial: optuna.trial.FrozenTrial) -> None:
        fail_dead_workers(study, client)

    return [
        reap,
        optuna.study.MaxTrialsCallback(budget, states=(*FINISHED_STATES, TrialState.RUNNING)),
    ]


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
    parent_run_id: str | None = None,
) -> StudyOutcome:
    """Create or resume the study and run the trials still missing from its budget.

    With ``parent_run_id`` (a worker of ``speechprint.workers``) the trial runs nest under that
    MLflow run, which this call neither logs to nor ends: the process that started it does.
    """
    budget = n_trials if n_trials is not None else spec.n_trials
    check_archive(spec, archive)
    storage_url = storage or spec.storage or default_storage(spec.name)
    client, study = open_study(spec, storage_url)
    remaining = budget - count_finished(study)
    owns_parent = parent_run_id is None
    if owns_parent:
        parent = start_parent_run(client, spec, storage_url, budget)
    else:
        parent = tracking.MLflowTracker(client, str(parent_run_id))
    if remaining <= 0:
        if owns_parent:
            parent.set_tags({"note": f"budget of {budget} finished trials already reached"})
            parent.end("COMPLETE")
        return StudyOutcome(study, parent.run_id, ran=0)

    interrupted = False
    before = _started(study)  # enqueued baselines are WAITING: they count once this call runs them
    try:
        prepared = prepare_features(
            spec, archive=archive, jobs=jobs, cache_dir=cache_dir, prepared=prepared
        )
        objective = make_objective(spec, client, parent.run_id, prepared, archive=archive)
        callbacks = budget_callbacks(budget, client)
        if on_trial is not None:
            callbacks.append(on_trial)
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
        if owns_parent:
            finish_parent_run(parent, study, "FAIL" if interrupted else "COMPLETE")
    return StudyOutcome(study, parent.run_id, ran=_started(study) - before, interrupted=interrupted)


def _started(study: optuna.Study) -> int:
    """Trials that have left the queue (running or finished)."""
    return sum(t.state != TrialState.WAITING for t in study.get_trials(deepcopy=False))


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
        mark_worker(trial)  # first: a kill from here on is detected by the other workers
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
