"""Running a study: data flows down once (archive -> dataset -> features -> trials).

``run_study`` is the one entry point, for one process or several (``workers``): it opens the
session, prepares every extractor's features once, then runs the trials still missing from the
budget here or in worker processes (``speechprint.study.workers``), each of which calls ``run_worker``.
"""

from __future__ import annotations

import hashlib
import logging
import os
from typing import Any

from speechprint.study import identity, recovery
from speechprint.study.session import StudyOutcome, StudySession, TrialCallback
from speechprint.study.space import base_config
from speechprint.study.spec import StudySpec

log = logging.getLogger(__name__)


def prepare_features(
    spec: StudySpec,
    *,
    jobs: int | None = None,
    cache_dir: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Data preparation, an explicit step: features of every extractor, once, before trials."""
    from speechprint.train.prepare import prepare_data

    prepared = {}
    for choice in spec.extractors:
        config = base_config(spec, choice.key, spec.models[0])
        config.jobs, config.cache_dir = jobs, cache_dir
        prepared[choice.key] = prepare_data(config, progress=progress)
    return prepared


def run_study(
    spec: StudySpec,
    *,
    archive: str | None = None,
    n_trials: int | None = None,
    timeout: float | None = None,
    storage: str | None = None,
    workers: int = 1,
    jobs: int | None = None,
    cache_dir: str | None = None,
    on_trial: TrialCallback | None = None,
    new_version: bool = False,
) -> StudyOutcome:
    """Create or resume the study and run the trials still missing from its budget.

    ``n_trials`` is the total budget of finished trials (default: the study file's). With
    ``workers > 1`` the trials run in that many processes sharing the storage (a journal file by
    default); ``on_trial`` must then be a picklable module-level function.

    A study created from another definition (``identity``) is refused before any work, unless
    ``new_version``: then the trials go to the first version ``NAME-vN`` that is new or matches.
    """
    check_options(n_trials=n_trials, timeout=timeout, workers=workers, jobs=jobs)
    spec = spec.with_archive(archive)
    spec = identity.resolve(spec, storage=storage, workers=workers, new_version=new_version)
    session = StudySession(spec, storage=storage, n_trials=n_trials, workers=workers)
    with session:
        identity.record(session.study, spec)
        if session.remaining > 0:
            prepared = prepare_features(spec, jobs=jobs, cache_dir=cache_dir)
            if workers > 1:
                from speechprint.study.workers import run_workers

                run_workers(
                    session,
                    workers=workers,
                    timeout=timeout,
                    cache_dir=cache_dir,
                    on_trial=on_trial,
                )
            else:
                _optimize(session, prepared, timeout=timeout, on_trial=on_trial)
    return session.outcome()


def check_options(
    *, n_trials: int | None, timeout: float | None, workers: int, jobs: int | None
) -> None:
    """The command line's numbers, each a one-line ``ConfigError`` naming its option."""
    from speechprint.core.errors import ConfigError

    for option, value, least in (
        ("--n-trials", n_trials, 1),
        ("--workers", workers, 1),
        ("--jobs", jobs, 1),
    ):
        if value is not None and value < least:
            raise ConfigError(f"{option} must be at least {least}, got {value}")
    if timeout is not None and not timeout > 0:
        raise ConfigError(f"--timeout must be a positive number of seconds, got {timeout}")


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
        _optimize(session, prepared, timeout=settings["timeout"], on_trial=on_trial)
    return session.outcome()


def _optimize(
    session: StudySession,
    prepared: dict[str, Any],
    *,
    timeout: float | None,
    on_trial: TrialCallback | None,
) -> None:
    from speechprint.study.objective import make_objective

    session.optimize(make_objective(session, prepared), timeout=timeout, on_trial=on_trial)


def worker_seed(seed: int | None) -> int:
    """The study's sampler seed mixed with this process: workers seeded alike would all propose
    the same startup points. Parallel studies are not reproducible anyway (timing decides)."""
    token = f"{seed}:{recovery.worker_host()}:{os.getpid()}".encode()
    return int.from_bytes(hashlib.sha256(token).digest()[:4], "little")
