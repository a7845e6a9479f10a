"""Several worker processes on one machine sharing one study (``study run --workers N``).

The parent checks MLflow and the Optuna storage, extracts the features of every extractor once
(filling the disk cache), creates the study and one MLflow parent run, then starts N processes
(spawned: torch and forked threads do not mix) that each call ``search.run_study`` on the shared
storage with that parent run id, so every trial run nests under it. Workers only read the cache.

Across machines nothing changes but the services: each machine runs the same command against a
PostgreSQL storage and an ``mlflow server`` (docs/SCALING.md), each with its own parent run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import multiprocessing
import os
import signal
import sys
import time
import warnings
from collections.abc import Iterator
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import optuna

from speechprint import search
from speechprint.search import StudyOutcome, StudySpec

# Exit status of a worker stopped by Ctrl-C / SIGTERM after closing its trial (as shells report).
INTERRUPTED = 130
# How long stopping workers may take to close their current trial before they are killed.
STOP_GRACE_S = 60.0


def run_study_parallel(
    spec: StudySpec,
    *,
    workers: int = 2,
    archive: str | None = None,
    n_trials: int | None = None,
    timeout: float | None = None,
    storage: str | None = None,
    jobs: int | None = None,
    cache_dir: str | None = None,
) -> StudyOutcome:
    """Run the trials still missing from the study's budget in ``workers`` processes.

    ``storage`` defaults to the study file's, else a journal file ``studies/<name>.journal.log``.
    Ctrl-C stops every worker after it closes its current trial (FAILED in Optuna and MLflow);
    ``interrupted`` is then set and the same command resumes the study.
    """
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    budget = n_trials if n_trials is not None else spec.n_trials
    search.check_archive(spec, archive)
    storage_url = _absolute(storage or spec.storage or search.default_storage(spec.name, workers))
    if workers > 1 and storage_url.startswith("sqlite"):
        print("warning: SQLite storage with several workers may fail with 'database is locked'; "
              "prefer a journal file (a path) or PostgreSQL")  # fmt: skip
    client, study = search.open_study(spec, storage_url)
    remaining = budget - search.count_finished(study)
    parent = search.start_parent_run(client, spec, storage_url, budget, workers=workers)
    if remaining <= 0:
        parent.set_tags({"note": f"budget of {budget} finished trials already reached"})
        parent.end("COMPLETE")
        return StudyOutcome(study, parent.run_id, ran=0)

    before = len(study.trials)
    interrupted = False
    crashed: list[str] = []
    try:
        # Features once, here; workers then only load them from the disk cache.
        search.prepare_features(spec, archive=archive, jobs=jobs, cache_dir=cache_dir)
        count = min(workers, remaining)  # more workers than missing trials would overshoot
        print(f"{spec.name}: {remaining} trial(s) to run in {count} worker(s); "
              f"storage {search.redact(storage_url)}", flush=True)  # fmt: skip
        context = multiprocessing.get_context("spawn")
        settings = {"archive": archive, "n_trials": budget, "timeout": timeout,
                    "storage": storage_url, "cache_dir": cache_dir,
                    "parent_run_id": parent.run_id}  # fmt: skip
        verbosity = optuna.logging.get_verbosity()
        processes = [
            context.Process(
                target=_worker,
                args=(spec, index, settings, verbosity),
                name=f"speechprint-worker-{index}",
            )
            for index in range(count)
        ]
        try:
            with _worker_environment(count):
                for process in processes:
                    process.start()
            _wait_all(processes)
        except KeyboardInterrupt:
            interrupted = True
            _stop(processes)
        codes = {p.name: p.exitcode for p in processes if p.pid is not None}  # started ones
        interrupted = interrupted or INTERRUPTED in codes.values()
        crashed = [f"{name} (exit {code})" for name, code in codes.items()
                   if code not in (0, INTERRUPTED)]  # fmt: skip
        # A worker killed mid-trial: fail its trial and close its run now, not at the next start.
        search.fail_dead_workers(study, client)
    except KeyboardInterrupt:
        interrupted = True  # during feature extraction: no worker started yet
    finally:
        failed_run = interrupted or (crashed and search.count_finished(study) < budget)
        search.finish_parent_run(parent, study, "FAIL" if failed_run else "COMPLETE")
    if crashed:
        print(f"warning: worker(s) stopped abnormally: {', '.join(crashed)}; their trials were "
              "marked FAILED", flush=True)  # fmt: skip
        # Below budget, say so the way Ctrl-C does: the CLI then prints how to resume.
        interrupted = interrupted or search.count_finished(study) < budget
    return StudyOutcome(
        study, parent.run_id, ran=len(study.trials) - before, interrupted=interrupted
    )


def _absolute(storage_url: str) -> str:
    """A journal path made absolute, so what is printed and tagged names the file anywhere."""
    return storage_url if "://" in storage_url else str(Path(storage_url).resolve())


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
    pending = {p.sentinel: p for p in processes}
    while pending:
        for sentinel in wait(list(pending)):
            pending.pop(sentinel).join()


def _stop(processes: list[BaseProcess]) -> None:
    """Ask workers to stop (SIGINT), give them time to close their trial, then kill the rest."""
    print("\nstopping workers: each closes its current trial (Ctrl-C again to kill them)",
          file=sys.stderr, flush=True)  # fmt: skip
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


def _interrupt_once(signum: int, frame: Any) -> None:
    """First SIGINT/SIGTERM: raise KeyboardInterrupt; later ones must not cut the cleanup short."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def _worker(spec: StudySpec, index: int, settings: dict[str, Any], verbosity: int) -> None:
    """One worker process: the shared study, trial runs under the invocation's parent run."""
    signal.signal(signal.SIGINT, _interrupt_once)
    signal.signal(signal.SIGTERM, _interrupt_once)
    optuna.logging.set_verbosity(verbosity)  # spawned: the parent's logging setup is not inherited
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    spec = dataclasses.replace(spec, sampler=worker_sampler(spec.sampler))
    try:
        # jobs=1: the cache is full, so this only loads it (and re-reads any unreadable file).
        prepared = search.prepare_features(spec, archive=settings["archive"], jobs=1,
                                           cache_dir=settings["cache_dir"], progress=False)  # fmt: skip
        outcome = search.run_study(
            spec, prepared=prepared, on_trial=functools.partial(_print_trial, index), **settings
        )
    except KeyboardInterrupt:
        sys.exit(INTERRUPTED)
    sys.exit(INTERRUPTED if outcome.interrupted else 0)


def worker_sampler(sampler: dict[str, Any]) -> dict[str, Any]:
    """The study's sampler settings with a seed of this process's own.

    Workers seeded alike would all propose the same random startup points. Parallel studies are
    not reproducible anyway (trial order depends on timing), so the seed mixes in the process.
    """
    seed = sampler.get("seed")
    token = f"{seed}:{search.worker_host()}:{os.getpid()}".encode()
    return {**sampler, "seed": int.from_bytes(hashlib.sha256(token).digest()[:4], "little")}


def _print_trial(index: int, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    pair = f"{trial.user_attrs.get('extractor', '?')}+{trial.user_attrs.get('model', '?')}"
    if trial.state.name == "COMPLETE":
        detail = f"val bal. acc. {trial.value:.3f}"
    else:
        detail = trial.user_attrs.get("fail_reason") or trial.user_attrs.get("prune_reason", "")
    print(f"[worker {index}] trial {trial.number:4d} {trial.state.name} {pair}: {detail}",
          flush=True)  # fmt: skip
