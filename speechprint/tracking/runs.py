"""One run lifecycle: a run opened for a body of work is always closed, with the right state.

``with open_run(client, experiment, run_name=...) as tracker:`` starts the run; the body's
success ends it COMPLETE (MLflow FINISHED); any exception, Ctrl-C included, ends it FAIL
(FAILED) with ``fail_reason`` and propagates. A caller that sorts exceptions (a study's trial:
``TrialPruned`` ends PRUNED, KILLED in MLflow, with ``prune_reason``) passes ``ending``.
Closing a run while an exception propagates never hides that exception behind MLflow's own.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

from mlflow import MlflowClient

from speechprint.tracking.store import MLflowTracker

log = logging.getLogger(__name__)

REASON_LIMIT = 5000  # characters of a reason kept in a tag
Ending = Callable[[BaseException], tuple[str, str]]  # exception -> (Optuna state word, reason)


def failure_reason(error: BaseException) -> str:
    """``"ValueError: bad thing"``: what a failed run's ``fail_reason`` says."""
    return f"{type(error).__name__}: {error}"


def failed(error: BaseException) -> tuple[str, str]:
    """The default ending: any exception fails the run."""
    return "FAIL", failure_reason(error)


def end_run(
    tracker: MLflowTracker,
    state: str = "COMPLETE",
    *,
    reason: str | None = None,
    tags: dict[str, Any] | None = None,
) -> None:
    """Tag the run (``reason`` as ``fail_reason``, or ``prune_reason`` for PRUNED), then end it
    in ``state`` (an Optuna state word: COMPLETE, PRUNED, FAIL)."""
    all_tags = dict(tags or {})
    if reason is not None:
        all_tags["fail_reason" if state == "FAIL" else "prune_reason"] = reason[:REASON_LIMIT]
    if all_tags:
        tracker.set_tags(all_tags)
    tracker.end(state)


def end_run_quietly(
    tracker: MLflowTracker,
    state: str,
    *,
    reason: str | None = None,
    tags: dict[str, Any] | None = None,
) -> None:
    """``end_run`` while an exception propagates: a store that cannot be reached is logged, so
    the exception the user sees is the body's own."""
    try:
        end_run(tracker, state, reason=reason, tags=tags)
    except Exception as error:  # noqa: BLE001 - never mask the body's own error
        log.warning("could not close MLflow run %s: %s", tracker.run_id, error)


@contextlib.contextmanager
def open_run(
    client: MlflowClient,
    experiment: str,
    *,
    run_name: str,
    parent_run_id: str | None = None,
    tags: dict[str, Any] | None = None,
    ending: Ending = failed,
) -> Iterator[MLflowTracker]:
    """A new run for the body, closed COMPLETE on success and as ``ending`` says on an
    exception (by default FAIL with its ``fail_reason``), which then propagates."""
    tracker = MLflowTracker.start(
        client, experiment, run_name=run_name, parent_run_id=parent_run_id, tags=tags
    )
    try:
        yield tracker
    except BaseException as error:
        state, reason = ending(error)
        end_run_quietly(tracker, state, reason=reason)
        raise
    end_run(tracker)
