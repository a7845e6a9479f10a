"""Per-speaker work (alignment, occlusion) over many recordings: worker processes + a progress bar.

Like feature extraction: forkserver workers with one BLAS/OpenMP thread each, chunks of items per
task, results in input order. The bar goes to stderr (a line per tenth of the work when stderr is
not a terminal), so the library still prints nothing on stdout.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

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
    from speechprint.features.extract import _mp_context

    jobs = max(1, min(jobs or os.cpu_count() or 1, len(items) or 1))
    size = max(1, min(16, len(items) // (jobs * 4) or 1))
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    out: list[R] = []
    with progress_bar(progress, len(items), label) as advance:
        if jobs == 1:
            if initializer is not None:
                initializer(*initargs)
            for chunk in chunks:
                out.extend(function(chunk))
                advance(len(chunk))
            return out

        with ProcessPoolExecutor(jobs, mp_context=_mp_context(), initializer=_worker_init,
                                 initargs=(initializer, initargs)) as pool:  # fmt: skip
            for chunk, results in zip(chunks, pool.map(function, chunks)):
                out.extend(results)
                advance(len(chunk))
    return out


def _worker_init(initializer: Callable[..., None] | None, initargs: tuple[Any, ...]) -> None:
    from speechprint.features.extract import _init_worker

    _init_worker()
    import torch

    torch.set_num_threads(1)  # one process per core: more threads would oversubscribe
    if initializer is not None:
        initializer(*initargs)


@contextlib.contextmanager
def progress_bar(enabled: bool, total: int, label: str) -> Iterator[Callable[[int], None]]:
    """A rich bar on stderr (no-op when disabled); yields ``advance(n)``."""
    if not enabled or total == 0:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    if not console.is_terminal:
        started, state = time.perf_counter(), {"done": 0, "next": max(1, total // 10)}

        def line(n: int) -> None:
            state["done"] += n
            if state["done"] >= state["next"] or state["done"] == total:
                state["next"] = state["done"] + max(1, total // 10)
                elapsed = time.perf_counter() - started
                console.print(
                    f"{label}: {state['done']}/{total} ({elapsed:.0f} s)", highlight=False
                )

        yield line
        return
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)
