"""One study session: the lifecycle shared by the serial runner and every worker process.

``with StudySession(spec, ...) as session:`` checks the archive, the tracking store and the Optuna
storage before any work; creates or loads the study (baselines queued once, trials of dead workers
failed and their runs closed); opens the invocation's MLflow parent run, or joins one (a worker).
On leaving, it ends the parent run it owns: COMPLETE, or FAILED with the reason tagged when an
exception escaped or the session was interrupted (Ctrl-C is absorbed and reported as
``interrupted``, so the caller can print how to resume). Trials run are counted once, here.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from speechprint.core import stopping
from speechprint.core.errors import DataError
from speechprint.study import identity, recovery
from speechprint.study.spec import StudySpec
from speechprint.study.storage import absolute, default_storage, open_storage, redact
from speechprint.tracking import store as tracking
from speechprint.tracking.runs import end_run, end_run_quietly, failure_reason

log = logging.getLogger(__name__)

FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)
TrialCallback = Callable[[optuna.Study, FrozenTrial], None]


@dataclass
class StudyOutcome:
    study: optuna.Study
    parent_run_id: str
    ran: int
    interrupted: bool = False


class StudySession:
    """A study, its storage and MLflow parent run for one invocation (see the module docstring)."""

    def __init__(
        self,
        spec: StudySpec,
        *,
        storage: str | None = None,
        n_trials: int | None = None,
        workers: int = 1,
        parent_run_id: str | None = None,
        sampler_seed: int | None = None,
    ) -> None:
        self.spec = spec
        self.budget = n_trials if n_trials is not None else spec.budget.n_trials
        self.workers = workers
        self.storage_url = absolute(storage or spec.storage or default_storage(spec.name, workers))
        self.owns_parent = parent_run_id is None
        self._parent_run_id = parent_run_id
        self._sampler_seed = sampler_seed
        self.interrupted = False
        self.fail_reason: str | None = None  # set by a runner whose workers crashed

    # -- entering: every check before any work -------------------------------------------------
    def __enter__(self) -> StudySession:
        archive = Path(self.spec.data.archive)
        if not archive.exists():
            raise DataError(
                f"{self.spec.source}: data.archive: archive not found: {archive} "
                "(set it in the study file or pass --archive)"
            )
        self.client = tracking.client()
        tracking.check_reachable(self.client)
        self.study = optuna.create_study(
            study_name=self.spec.name,
            storage=open_storage(self.storage_url),
            direction="maximize",
            sampler=self.spec.sampler.build(self._sampler_seed),
            pruner=self.spec.pruner.build(),
            load_if_exists=True,
        )
        self.study.set_user_attr("source", self.spec.source)
        identity.record_transfer(self.study, self.spec)
        for baseline in self.spec.baselines:
            self.study.enqueue_trial(baseline, skip_if_exists=True)
        self._recover()
        # Enqueued baselines are WAITING: they count as run once this session starts them.
        self._started_before = _started(self.study)
        self.parent = self._open_parent()
        return self

    def _recover(self) -> None:
        failed = recovery.fail_dead_workers(self.study, self.client)
        closed = recovery.close_orphan_runs(self.study, self.client)
        closed += recovery.close_orphan_parents(self.client, self.spec.name)
        if failed or closed:
            log.warning(
                "marked %d trial(s) of stopped workers FAILED; closed %d more MLflow "
                "run(s) left open",
                failed,
                closed,
            )

    def _open_parent(self) -> tracking.MLflowTracker:
        if not self.owns_parent:
            return tracking.MLflowTracker(self.client, str(self._parent_run_id))
        parent = tracking.MLflowTracker.start(
            self.client,
            self.spec.name,
            run_name=f"study-{time.strftime('%Y%m%d-%H%M%S')}-{socket.gethostname()}-{os.getpid()}",
            tags={
                "study": self.spec.name,
                "kind": "study",
                "storage": redact(self.storage_url),
                **recovery.this_process(),
            },
            primary_metric=tracking.objective_metric(cross_validated=self.spec.cv is not None),
        )
        parent.log_params(
            {
                "study_file": self.spec.source,
                "n_trials": self.budget,
                "epochs": self.spec.train.epochs,
                "pairs": self.spec.pairs(),
                "sampler": self.spec.sampler.model_dump(),
                "pruner": self.spec.pruner.model_dump(),
                "workers": self.workers,
                "regions": self.spec.data.regions,
            }
        )
        return parent

    # -- leaving: the parent run is always closed, with the right state -----------------------
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
            self.interrupted = True
        elif exc is not None:
            self.fail_reason = failure_reason(exc)
        if self.owns_parent:
            self._close_parent()
        return self.interrupted  # absorb Ctrl-C only; every other exception propagates

    def _close_parent(self) -> None:
        tags: dict[str, Any] = {}
        if self.interrupted:
            tags["note"] = "interrupted: the same command resumes the study"
        elif self.remaining <= 0 and self.ran == 0:
            tags["note"] = f"budget of {self.budget} finished trials already reached"
        try:
            best = self.study.best_trial
            # Under the metric the experiment declares primary: the k-fold mean when the study
            # is cross-validated, so the UI's charts and the parent run speak of one measure.
            objective = tracking.objective_metric(cross_validated=self.spec.cv is not None)
            self.parent.log_metrics({objective: float(self.study.best_value)})
            tags.update(
                best_trial=best.number, best_run_id=best.user_attrs.get("mlflow_run_id", "")
            )
        except ValueError:
            pass  # no completed trial yet
        if self.fail_reason or self.interrupted:
            end_run_quietly(self.parent, "FAIL", reason=self.fail_reason, tags=tags)
        else:
            end_run(self.parent, tags=tags)

    # -- the budget ----------------------------------------------------------------------------
    @property
    def remaining(self) -> int:
        """Finished trials still missing from the budget."""
        return self.budget - count_finished(self.study)

    @property
    def ran(self) -> int:
        """Trials this session (and its workers) took from the queue or started."""
        return _started(self.study) - self._started_before

    def optimize(
        self,
        objective: Callable[[optuna.Trial], float],
        *,
        timeout: float | None = None,
        on_trial: TrialCallback | None = None,
    ) -> None:
        """Run trials until the budget is covered; a crashing trial fails, the study goes on."""
        self.study.optimize(
            objective,
            n_trials=max(self.remaining, 0),
            timeout=timeout if timeout is not None else self.spec.budget.timeout,
            catch=(Exception,),
            callbacks=self._callbacks(on_trial),
            gc_after_trial=True,
        )

    def _callbacks(self, on_trial: TrialCallback | None) -> list[TrialCallback]:
        """After each trial: fail trials of dead local workers, then stop once the budget is
        covered. Trials RUNNING in other workers count, so N workers do not overshoot by N-1."""

        def reap(study: optuna.Study, _trial: FrozenTrial) -> None:
            recovery.fail_dead_workers(study, self.client)

        callbacks: list[TrialCallback] = [
            reap,
            optuna.study.MaxTrialsCallback(
                self.budget, states=(*FINISHED_STATES, TrialState.RUNNING)
            ),
        ]
        # Last: the trial is reported before a stop asked for during it (stopping.py) is made.
        return [
            *callbacks,
            *([on_trial] if on_trial is not None else []),
            stopping.stop_if_requested,
        ]

    def outcome(self) -> StudyOutcome:
        return StudyOutcome(self.study, self.parent.run_id, self.ran, self.interrupted)


def count_finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED_STATES))


def _started(study: optuna.Study) -> int:
    """Trials that have left the queue (running or finished)."""
    return sum(t.state != TrialState.WAITING for t in study.get_trials(deepcopy=False))
