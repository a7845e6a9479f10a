"""Recovery of dead workers, and the pin on the Optuna private API it relies on."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import optuna
from optuna.storages import BaseStorage
from optuna.trial import TrialState

from speechprint.study import recovery
from speechprint.study.storage import open_storage


def test_the_optuna_private_api_that_recovery_uses_is_unchanged(tmp_path: Path) -> None:
    """recovery.py is the one user of these; an Optuna upgrade that changes them fails here."""
    study = optuna.create_study(storage=open_storage(str(tmp_path / "s.journal.log")))
    trial = study.ask()
    assert isinstance(study._storage, BaseStorage)
    (frozen,) = study.get_trials(deepcopy=False)
    assert frozen._trial_id == trial._trial_id
    expected = {
        "set_trial_state_values": ["trial_id", "state", "values"],
        "set_trial_user_attr": ["trial_id", "key", "value"],
        "get_trial": ["trial_id"],
    }
    for name, parameters in expected.items():
        signature = inspect.signature(getattr(BaseStorage, name))
        assert list(signature.parameters)[1:] == parameters, name
    assert study._storage.get_trial(trial._trial_id).number == trial.number


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_dead_workers_trial_is_failed_with_its_reason_and_queued_once(
    tmp_path: Path, tracking: str
) -> None:
    study = optuna.create_study(storage=open_storage(str(tmp_path / "s.journal.log")))
    dead, alive = study.ask(), study.ask()
    dead.suggest_float("x", 0, 1)
    for key, value in {**recovery.this_process(), "worker_pid": _dead_pid()}.items():
        dead.set_user_attr(key, value)
    recovery.mark_worker(alive)  # this very process: alive
    assert recovery.fail_dead_workers(study) == 1
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    assert trials[dead.number].state == TrialState.FAIL
    assert "stopped during the trial" in trials[dead.number].user_attrs["fail_reason"]
    assert trials[alive.number].state == TrialState.RUNNING
    (retry,) = [t for t in trials.values() if t.state == TrialState.WAITING]
    assert retry.params == trials[dead.number].params  # the same point, queued once more
    assert "worker_pid" not in retry.user_attrs  # not the dead worker's identity
    assert recovery.fail_dead_workers(study) == 0  # idempotent


def test_a_trial_of_another_host_or_a_reused_pid_is_judged_correctly() -> None:
    me = recovery.this_process()
    assert not recovery._is_dead({**me, "worker_host": "elsewhere/ns"})  # unknown: alive
    assert recovery._is_dead({**me, "worker_pid": _dead_pid()})
    assert recovery._is_dead({**me, "worker_start": "1"})  # same pid, another process
    assert not recovery._is_dead({**me, "worker_pid": os.getpid()})
