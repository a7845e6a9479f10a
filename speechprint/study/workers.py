"""Worker processes on one machine sharing one study (``study run --workers N``): process
management only.

The study session (``speechprint.study.session``) has already checked the services, created the
study and its MLflow parent run, and the runner has filled the feature cache. Here N processes are
spawned (torch and forked threads do not mix), each calling ``run_worker``
on the shared storage with the parent run's id, so every trial run nests under it. A worker killed
mid-trial has its trial failed and its run closed as soon as the others notice.

Across machines nothing changes but the services: each machine runs the same command against a
PostgreSQL storage and an ``mlflow server`` (docs/SCALING.md), each with its own parent run.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import multiprocessing
import os
import signal
import sys
import time
import warnings
from collections.abc import Iterator
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from typing import Any

import optuna

from speechprint.core import stopping
from speechprint.core.processes import watch_parent
from speechprint.study import recovery
from speechprint.study.objective import optimize, prepare_features
from speechprint.study.session import StudyOutcome, StudySession, TrialCallback, count_finished
from speechprint.study.spec import StudySpec
from speechprint.study.storage import redact

log = logging.getLogger(__name__)

# Exit status of a worker stopped by Ctrl-C / SIGTERM after closing its trial (as shells report).
INTERRUPTED = 130
# How long stopping workers may take to close their current trial before they are killed.
STOP_GRACE_S = 60.0


def run_workers(
    session: StudySession,
    *,
    workers: int,
    timeout: float | None,
    cache_dir: str | None,
    on_trial: TrialCallback | None,
) -> None:
    """Run the session's missing trials in ``workers`` processes; Ctrl-C stops them all after
    each closes its current trial (then re-raised for the session to record)."""
    if session.storage_url.startswith("sqlite"):
        log.warning(
            "SQLite storage with several workers may fail with 'database is locked'; "
            "prefer a journal file (a path) or PostgreSQL"
        )
    count = min(workers, session.remaining)  # more workers than missing trials would overshoot
    log.info(
        "%s: %d trial(s) to run in %d worker(s); storage %s",
        session.spec.name,
        session.remaining,
        count,
        redact(session.storage_url),
    )
    settings = {
        "n_trials": session.budget,
        "timeout": timeout,
        "storage": session.storage_url,
        "cache_dir": cache_dir,
        "parent_run_id": session.parent.run_id,
        "parent_pid": os.getpid(),
    }
    processes = _spawn(session.spec, count, settings, on_trial)
    try:
        _wait_all(processes)
    except KeyboardInterrupt:
        _stop(processes)
        raise
    finally:
        # A worker killed mid-trial: fail its trial and close its run now, not at the next start.
        recovery.fail_dead_workers(session.study, session.client)
    _judge_exits(session, processes)


def _spawn(
    spec: StudySpec, count: int, settings: dict[str, Any], on_trial: TrialCallback | None
) -> list[BaseProcess]:
    context = multiprocessing.get_context("spawn")
    levels = (optuna.logging.get_verbosity(), logging.getLogger().getEffectiveLevel())
    processes: list[BaseProcess] = [
        context.Process(
            target=_worker,
            args=(spec, settings, levels, on_trial),
            name=f"speechprint-worker-{index}",
        )
        for index in range(count)
    ]
    with _worker_environment(count):
        for process in processes:
            process.start()
    return processes


def _judge_exits(session: StudySession, processes: list[BaseProcess]) -> None:
    """Workers stopped by Ctrl-C, or crashed below budget: the session is interrupted (the CLI
    prints how to resume) and, for crashes, its parent run FAILED with the reason."""
    codes = {p.name: p.exitcode for p in processes}
    crashed = [
        f"{name} (exit {code})" for name, code in codes.items() if code not in (0, INTERRUPTED)
    ]
    below_budget = count_finished(session.study) < session.budget
    if INTERRUPTED in codes.values():
        session.interrupted = True
    if crashed:
        log.warning(
            "worker(s) stopped abnormally: %s; their trials were marked FAILED", ", ".join(crashed)
        )
        if below_budget:
            session.fail_reason = f"worker(s) stopped abnormally: {', '.join(crashed)}"
            session.interrupted = True


@contextlib.contextmanager
def _worker_environment(count: int) -> Iterator[None]:
    """Environment for the spawned workers (they copy ``os.environ`` when they start).

    Several torch processes on the same cores: OpenMP threads that spin while waiting steal the
    cores from the other workers (trials ran about 2x slower in parallel without this), and each
    worker gets its share of the cores for training instead of all of them.
    """
    settings = {
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE"),
        "SPEECHPRINT_TORCH_THREADS": str(max(1, (os.cpu_count() or 1) // count)),
    }
    saved = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _wait_all(processes: list[BaseProcess]) -> None:
    pending: dict[Any, BaseProcess] = {p.sentinel: p for p in processes}
    while pending:
        for sentinel in wait(list(pending), timeout=1.0):
            pending.pop(sentinel).join()
        stopping.stop_if_requested()  # a stop whose KeyboardInterrupt was lost (stopping.py)


def _stop(processes: list[BaseProcess]) -> None:
    """Ask workers to stop (SIGINT), give them time to close their trial, then kill the rest."""
    log.warning("stopping workers: each closes its current trial (Ctrl-C again to kill them)")
    for process in processes:
        if process.is_alive() and process.pid is not None:
            # A terminal's Ctrl-C reached them already; a SIGINT sent to the parent alone did not.
            os.kill(process.pid, signal.SIGINT)
    started = [p for p in processes if p.pid is not None]  # Ctrl-C may come while starting them
    deadline = time.monotonic() + STOP_GRACE_S
    try:
        for process in started:
            process.join(max(0.0, deadline - time.monotonic()))
    except KeyboardInterrupt:
        pass
    for process in started:
        if process.is_alive():
            process.kill()  # its trial is failed by fail_dead_workers
            process.join()


def _worker(
    spec: StudySpec,
    settings: dict[str, Any],
    levels: tuple[int, int],
    on_trial: TrialCallback | None,
) -> None:
    """One worker process: the shared study, trial runs under the invocation's parent run."""
    stopping.install(once=(signal.SIGINT, signal.SIGTERM))
    # A parent killed outright (SIGKILL) cannot stop us: stop as on Ctrl-C, closing the trial.
    watch_parent(settings["parent_pid"], lambda: os.kill(os.getpid(), signal.SIGINT))
    # Spawned: the parent's logging setup is not inherited.
    optuna.logging.set_verbosity(levels[0])
    logging.basicConfig(level=levels[1], format="%(processName)s %(levelname)s: %(message)s")
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    try:
        outcome = run_worker(spec, settings, on_trial)
    except KeyboardInterrupt:
        sys.exit(INTERRUPTED)
    sys.exit(INTERRUPTED if outcome.interrupted else 0)


def run_worker(
    spec: StudySpec, settings: dict[str, Any], on_trial: TrialCallback | None = None
) -> StudyOutcome:
    """One worker process's share of a study; its trial runs nest under the invocation's parent.

    ``settings``: ``storage``, ``n_trials``, ``timeout``, ``cache_dir`` and ``parent_run_id``.
    """
    session = StudySession(
        spec,
        storage=settings["storage"],
        n_trials=settings["n_trials"],
        parent_run_id=settings["parent_run_id"],
        sampler_seed=worker_seed(spec.sampler.seed),
    )
    with session:
        # jobs=1: the parent filled the cache, so this only loads it.
        prepared = prepare_features(spec, jobs=1, cache_dir=settings["cache_dir"], progress=False)
        optimize(session, prepared, timeout=settings["timeout"], on_trial=on_trial)
    return session.outcome()


def worker_seed(seed: int | None) -> int:
    """The study's sampler seed mixed with this process: workers seeded alike would all propose
    the same startup points. Parallel studies are not reproducible anyway (timing decides)."""
    token = f"{seed}:{recovery.worker_host()}:{os.getpid()}".encode()
    return int.from_bytes(hashlib.sha256(token).digest()[:4], "little")
