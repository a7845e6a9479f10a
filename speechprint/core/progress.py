"""The extraction progress bar: rich on a terminal, a line per tenth of the work in a log file."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any


@contextlib.contextmanager
def progress_bar(
    enabled: bool, total: int, label: str, *, unit: str = "files"
) -> Iterator[Callable[[int], None]]:
    """A rich progress bar labelled ``label`` on stderr (a no-op when disabled or empty); yields
    ``advance(n)``. Extraction and the findings' parallel sections share it."""
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
        # A log file (nohup, CI) gets no live bar: a line at every tenth of the work instead.
        yield progress_lines(console, total, label, unit=unit)
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def progress_lines(
    console: Any, total: int, label: str, *, unit: str = "files"
) -> Callable[[int], None]:
    """``advance(n)`` that prints ``label: done/total (elapsed)`` at each tenth of ``total``."""
    started = time.perf_counter()
    state = {"done": 0, "next": max(1, total // 10)}

    def advance(n: int) -> None:
        state["done"] += n
        if state["done"] >= state["next"] or state["done"] == total:
            state["next"] = state["done"] + max(1, total // 10)
            elapsed = time.perf_counter() - started
            console.print(
                f"{label}: {state['done']}/{total}{' ' + unit if unit else ''} ({elapsed:.0f} s)",
                highlight=False,
            )

    return advance
