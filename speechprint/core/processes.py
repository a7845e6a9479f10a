"""Worker processes for extraction and findings: how they start, their threads, their lifetime.

Workers are forked from a fork server that has already imported the heavy modules, run one BLAS
thread each, and exit on their own when the process that started them is gone: killed by
SIGTERM or SIGKILL, a parent cannot shut its pool down, and the workers (and the fork server)
would otherwise live on, holding models in memory. ``watch_parent`` is the same watch for other
workers (a study's, which close their trial first).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable

# Modules the fork server imports once, so each worker forked from it starts warm (~1 s saved per
# worker, which is a tenth of a cold run over the real archive on two cores).
PRELOAD = [
    "numpy",
    "scipy.fft",
    "scipy.signal",
    "soundfile",
    "soxr",
    "librosa.filters",
    "speechprint.features",
    "speechprint.data.audio",
]
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
PARENT_POLL_S = 1.0


def mp_context() -> multiprocessing.context.BaseContext:
    """forkserver where available (else spawn).

    Workers are forked from a clean single-threaded server that has already imported the heavy
    modules. Plain fork would copy whatever threads the caller runs (progress bars, MLflow, torch
    pools) and can deadlock; spawn would re-import everything in every worker.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        return context
    return multiprocessing.get_context("spawn")


def init_worker(parent_pid: int | None = None) -> None:
    """One thread per process (N workers on N cores must not each start N BLAS/OpenMP threads);
    with ``parent_pid``, exit when that process is gone."""
    for name in THREAD_VARS:
        os.environ[name] = "1"
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # threadpoolctl comes with scikit-learn; without it the env vars still help
        pass
    if parent_pid is not None:
        # No cleanup to run: the parent that would read the results is gone.
        watch_parent(parent_pid, lambda: os._exit(1))


def watch_parent(parent_pid: int, when_gone: Callable[[], None]) -> None:
    """Call ``when_gone`` (in a daemon thread) once ``parent_pid`` has exited."""

    def watch() -> None:
        while is_alive(parent_pid):
            time.sleep(PARENT_POLL_S)
        when_gone()

    threading.Thread(target=watch, daemon=True, name="speechprint-parent-watch").start()


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: nothing is sent, only whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else (a reused pid): treat as alive
        return True
    return True
