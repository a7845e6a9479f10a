"""Recovery of dead workers: trials whose process stopped (SIGKILL, out of memory, a lost machine).

A trial records which process runs it (user attributes ``worker_host``, ``worker_pid``,
``worker_start``). JournalStorage has no heartbeat, so a RUNNING trial whose process on this host
is gone is failed by pid at (re)start and after every trial; RDB storages also get Optuna's
heartbeat, which covers workers on other machines. Such a trial's MLflow run is closed as FAILED and
the trial is queued once more.

This is the only module that touches Optuna's private API (``study._storage``,
``FrozenTrial._trial_id`` and the storage's ``set_trial_*`` methods): Optuna has no public way to
fail another process's trial. ``tests/test_recovery.py`` pins that API, so an Optuna upgrade that
changes it fails a test instead of a study.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

log = logging.getLogger(__name__)


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
            _close_orphan_run(self._client or _tracking().client(), trial)
        except Exception as error:  # noqa: BLE001 - the next (re)start closes it instead
            log.warning("could not close the MLflow run of trial %d: %s", trial.number, error)
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
    runs = _runs()
    state = trial.state.name if trial.state != TrialState.WAITING else "FAIL"
    # Its own process stopped, whatever Optuna's state: the tag is a failure's reason.
    runs.end_run(runs.MLflowTracker(client, run_id), state, tags={"fail_reason": reason})
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
            runs = _runs()
            runs.end_run(
                runs.MLflowTracker(client, parent.info.run_id),
                "FAIL",
                tags={"note": "the study run process stopped without closing this run"},
            )
            closed += 1
    return closed


def close_orphan_runs(study: optuna.Study, client: Any) -> int:
    """Close MLflow runs of trials that ended without their process (killed worker).

    A trial whose run is still RUNNING in MLflow but not RUNNING in Optuna (failed by heartbeat,
    or finished by a retry) gets the Optuna state; returns how many runs were closed.
    """
    return sum(_close_orphan_run(client, trial) for trial in study.get_trials(deepcopy=False))


def _runs() -> Any:
    """``speechprint.tracking.runs`` (the one run lifecycle), imported when first needed (it
    imports MLflow)."""
    from speechprint.tracking import runs

    return runs


def _tracking() -> Any:
    """``speechprint.tracking.store``, imported when first needed (it imports MLflow)."""
    from speechprint.tracking import store

    return store
