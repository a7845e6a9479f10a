"""Per-speaker work (alignment, occlusion) over many recordings: worker processes + a progress bar.

Like feature extraction: forkserver workers with one BLAS/OpenMP thread each, chunks of items per
task, results in input order. The bar goes to stderr (a line per tenth of the work when stderr is
not a terminal), so the library still prints nothing on stdout.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

from speechprint.core.processes import init_worker, mp_context
from speechprint.core.progress import progress_bar

T = TypeVar("T")
R = TypeVar("R")


def parallel_map(
    function: Callable[[Sequence[T]], list[R]],
    items: Sequence[T],
    *,
    jobs: int | None,
    label: str,
    progress: bool,
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
) -> list[R]:
    """``function(chunk) -> results`` over chunks of ``items``; ``jobs=1`` runs in this process."""
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(items) or 1))
    size = max(1, min(16, len(items) // (jobs * 4) or 1))
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    out: list[R] = []
    with progress_bar(progress, len(items), label, unit="") as advance:
        if jobs == 1:
            if initializer is not None:
                initializer(*initargs)
            for chunk in chunks:
                out.extend(function(chunk))
                advance(len(chunk))
            return out

        with ProcessPoolExecutor(
            jobs,
            mp_context=mp_context(),
            initializer=_worker_init,
            initargs=(initializer, initargs, os.getpid()),
        ) as pool:
            for chunk, results in zip(chunks, pool.map(function, chunks)):
                out.extend(results)
                advance(len(chunk))
    return out


def _worker_init(
    initializer: Callable[..., None] | None, initargs: tuple[Any, ...], parent_pid: int
) -> None:
    init_worker(parent_pid)
    import torch

    torch.set_num_threads(1)  # one process per core: more threads would oversubscribe
    if initializer is not None:
        initializer(*initargs)
