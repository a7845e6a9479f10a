"""Stopping on request: SIGINT and SIGTERM end a command as Ctrl-C does, and the request stands.

A signal handler's KeyboardInterrupt surfaces wherever Python happens to be; raised inside a
weakref callback or a finaliser (a trial's garbage collection runs many), it is printed
("Exception ignored in ...") and dropped. A handler that then ignores further signals, so that
they cannot cut the cleanup short, would leave the process running to the end of its budget. So
the request is remembered, and a study honours it at the end of the trial it did not interrupt.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence
from typing import Any

_requested = False


def install(*, once: Sequence[signal.Signals], repeatable: Sequence[signal.Signals] = ()) -> None:
    """Each signal raises KeyboardInterrupt. The first of ``once`` also ignores all of ``once``
    from then on (a second must not cut the cleanup short); ``repeatable`` ones raise every time
    (Ctrl-C again forces the stop)."""

    def first_only(signum: int, frame: Any) -> None:
        for other in once:
            signal.signal(other, signal.SIG_IGN)
        raise_stop(signum, frame)

    for signum in once:
        signal.signal(signum, first_only)
    for signum in repeatable:
        signal.signal(signum, raise_stop)
    sys.unraisablehook = _quiet_lost_stop(sys.unraisablehook)


def _quiet_lost_stop(previous: Any) -> Any:
    """A stop dropped inside a finaliser is remembered and honoured later: Python's report of
    it ("Exception ignored in ...", a traceback) would only alarm; anything else is reported."""

    def hook(unraisable: Any) -> None:
        if not (_requested and unraisable.exc_type is KeyboardInterrupt):
            previous(unraisable)

    return hook


def raise_stop(signum: int, frame: Any) -> None:
    global _requested
    _requested = True
    raise KeyboardInterrupt


def stop_if_requested(*_args: Any) -> None:
    """The stop asked for, if its KeyboardInterrupt was lost (also a study callback)."""
    if _requested:
        raise KeyboardInterrupt
