"""Running a study: data flows down once (archive -> dataset -> features -> trials).

``run_study`` is the one entry point, for one process or several (``workers``): it opens the
session, prepares every extractor's features once, then runs the trials still missing from the
budget here or in worker processes (``speechprint.study.workers``), each of which calls ``workers.run_worker``.
"""

from __future__ import annotations

import logging

from speechprint.catalogue.dataset import check_data
from speechprint.study import identity
from speechprint.study.objective import optimize, prepare_features
from speechprint.study.session import StudyOutcome, StudySession, TrialCallback
from speechprint.study.spec import StudySpec, check_options
from speechprint.study.workers import run_workers

__all__ = ["check_options", "prepare_features", "run_study"]

log = logging.getLogger(__name__)


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
    check_data(spec.data, source=spec.source)  # before any study, run or feature exists
    spec = identity.resolve(spec, storage=storage, workers=workers, new_version=new_version)
    session = StudySession(spec, storage=storage, n_trials=n_trials, workers=workers)
    with session:
        identity.record(session.study, spec)
        if session.remaining > 0:
            prepared = prepare_features(spec, jobs=jobs, cache_dir=cache_dir)
            if workers > 1:
                run_workers(
                    session,
                    workers=workers,
                    timeout=timeout,
                    cache_dir=cache_dir,
                    on_trial=on_trial,
                )
            else:
                optimize(session, prepared, timeout=timeout, on_trial=on_trial)
    return session.outcome()
