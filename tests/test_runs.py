"""The one run lifecycle (``tracking.runs.open_run``) on a real MLflow store in ``tmp_path``."""

from __future__ import annotations

import pytest

from speechprint.tracking import store
from speechprint.tracking.runs import open_run


def test_a_failing_body_ends_its_run_failed_with_its_reason(tracking: str) -> None:
    client = store.client()
    with pytest.raises(ValueError, match="no such archive"):
        with open_run(client, "lifecycle", run_name="fails", tags={"kind": "test"}) as tracker:
            raise ValueError("no such archive")
    run = client.get_run(tracker.run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["fail_reason"] == "ValueError: no such archive"
    assert run.data.tags["state"] == "FAIL"
    assert run.data.tags["kind"] == "test"


def test_a_finished_body_ends_its_run_finished(tracking: str) -> None:
    client = store.client()
    with open_run(client, "lifecycle", run_name="works") as tracker:
        tracker.log_metrics({"val/balanced_accuracy": 0.5})
    run = client.get_run(tracker.run_id)
    assert run.info.status == "FINISHED"
    assert "fail_reason" not in run.data.tags


def test_ctrl_c_fails_the_run_and_still_propagates(tracking: str) -> None:
    client = store.client()
    with pytest.raises(KeyboardInterrupt):
        with open_run(client, "lifecycle", run_name="interrupted") as tracker:
            raise KeyboardInterrupt
    run = client.get_run(tracker.run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["fail_reason"].startswith("KeyboardInterrupt")


def test_an_ending_may_prune_instead_of_failing(tracking: str) -> None:
    client = store.client()

    def pruned(error: BaseException) -> tuple[str, str]:
        return "PRUNED", str(error)

    with pytest.raises(RuntimeError):
        with open_run(client, "lifecycle", run_name="pruned", ending=pruned) as tracker:
            raise RuntimeError("loss is NaN at epoch 3")
    run = client.get_run(tracker.run_id)
    assert run.info.status == "KILLED"
    assert run.data.tags["prune_reason"] == "loss is NaN at epoch 3"
