"""Scale-out and faults: worker processes sharing a study, PostgreSQL + ``mlflow server``, kills.

Everything is real: Optuna journal and PostgreSQL storages, MLflow SQLite stores and an
``mlflow server`` subprocess, worker processes killed with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mlflow
import optuna
import pytest
import yaml
from optuna.trial import TrialState

from speechprint.study.runner import run_study
from speechprint.study.spec import StudySpec
from speechprint.study.storage import StorageError, load_study
from speechprint.tracking.store import TrackingError

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def study_dict(
    archive: Path,
    *,
    name: str = "scale",
    n_trials: int = 4,
    epochs: int = 3,
    models: tuple[str, ...] = ("mlp", "logreg"),
) -> dict[str, Any]:
    return {
        "name": name,
        "data": {"archive": str(archive), "target": "region", "min_count": 3, "seed": 0},
        "extractors": ["mfcc_mean"],
        "models": list(models),
        "budget": {"n_trials": n_trials},
        "train": {"epochs": epochs, "patience": epochs},
        "sampler": {"name": "random", "seed": 0},
        "pruner": {"name": "none"},
    }


@pytest.fixture(scope="module")
def feature_cache(tiny_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """One feature cache for the module, filled once (the runs below then only read it)."""
    from speechprint.study.runner import prepare_features

    path = str(tmp_path_factory.mktemp("scaleout-cache"))
    prepare_features(
        StudySpec.from_dict(study_dict(tiny_archive)), jobs=1, cache_dir=path, progress=False
    )
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def assert_one_run_per_trial(client: mlflow.MlflowClient, study: optuna.Study) -> list[Any]:
    """Every trial has exactly one closed child run whose ``state`` tag is the trial's state."""
    experiment = client.get_experiment_by_name(study.study_name)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents = {r.info.run_id for r in runs if r.data.tags.get("kind") == "study"}
    children = [r for r in runs if "trial_number" in r.data.tags]
    numbers = [int(r.data.tags["trial_number"]) for r in children]
    assert sorted(numbers) == sorted(t.number for t in study.trials)  # one run per trial
    by_number = dict(zip(numbers, children, strict=True))
    for trial in study.trials:
        run = by_number[trial.number]
        assert trial.user_attrs["mlflow_run_id"] == run.info.run_id
        assert run.data.tags["state"] == trial.state.name, trial.number
        assert run.info.status != "RUNNING"
        assert run.data.tags["mlflow.parentRunId"] in parents
    return children


@pytest.mark.slow
def test_two_local_workers_share_one_study(
    tiny_archive: Path, tracking: str, feature_cache: str, tmp_path: Path
) -> None:
    spec = StudySpec.from_dict(study_dict(tiny_archive, n_trials=4))
    journal = tmp_path / "scale.journal.log"
    outcome = run_study(spec, workers=2, storage=str(journal), cache_dir=feature_cache)
    study = outcome.study
    assert not outcome.interrupted and outcome.ran == 4
    assert sorted(t.number for t in study.trials) == [0, 1, 2, 3]
    assert all(t.state in FINISHED for t in study.trials)
    assert len({t.user_attrs["worker_pid"] for t in study.trials}) == 2  # both workers ran trials
    client = mlflow.MlflowClient(tracking)
    assert_one_run_per_trial(client, study)
    experiment = client.get_experiment_by_name("scale")
    parents = client.search_runs([experiment.experiment_id], "tags.kind = 'study'")
    assert [p.info.run_id for p in parents] == [outcome.parent_run_id]  # one parent run
    assert parents[0].info.status == "FINISHED"


def _in_training(study: optuna.Study, *, not_pid: int | None = None) -> Any:
    """A RUNNING trial that has reported an epoch (so it is mid-training) and has its MLflow run."""
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        attrs = trial.user_attrs
        if trial.intermediate_values and "mlflow_run_id" in attrs and "worker_pid" in attrs:
            if attrs["worker_pid"] != not_pid:
                return trial
    return None


def _wait_for(
    condition: Callable[[optuna.Study], Any], storage: str, name: str, proc: subprocess.Popen[str]
) -> Any:
    """Poll the study until ``condition`` returns something (the command must keep running)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[0]
        try:
            found = condition(load_study(name, storage))
        except StorageError:  # not created yet
            found = None
        if found is not None:
            return found
        time.sleep(0.2)
    raise AssertionError("the study did not get there within 120 s")


def _kill_between_writes(journal: str, pid: int, *, group: bool = False) -> None:
    """SIGKILL a process (or process group) at a moment it holds no journal-file lock.

    A kill during a journal append leaves the lock file behind, and the other processes wait
    Optuna's grace period (30 s) before breaking it: handled, but slow for a test. So stop the
    process first, kill it if the lock is free, else let it go on and try again.
    """
    send = os.killpg if group else os.kill
    lock = Path(journal + ".lock")
    for _ in range(200):
        send(pid, signal.SIGSTOP)
        if not lock.exists():
            send(pid, signal.SIGKILL)
            return
        send(pid, signal.SIGCONT)
        time.sleep(0.02)
    raise AssertionError("the journal lock was never free")


@pytest.mark.slow
def test_killed_workers_fail_their_trials_and_a_repeat_completes(
    tiny_archive: Path, tracking: str, feature_cache: str, tmp_path: Path
) -> None:
    # Long trials (many epochs, no early stopping) so that a kill lands in the middle of one.
    raw = study_dict(tiny_archive, name="killed", n_trials=3, epochs=30, models=("mlp",))
    study_file = tmp_path / "killed.yaml"
    study_file.write_text(yaml.safe_dump(raw))
    journal = str(tmp_path / "killed.journal.log")
    command = [
        sys.executable,
        "-m",
        "speechprint",
        "study",
        "run",
        str(study_file),
        "--workers",
        "2",
        "--storage",
        journal,
        "--cache-dir",
        feature_cache,
    ]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        # 1. One worker is SIGKILLed in the middle of a trial; the other one goes on, and after
        #    its own trial fails the dead worker's trial, closes its run and queues it again.
        first = _wait_for(_in_training, journal, "killed", proc)
        first_pid = first.user_attrs["worker_pid"]
        _kill_between_writes(journal, first_pid)

        def failed_and_next(study: optuna.Study) -> Any:
            if study.trials[first.number].state != TrialState.FAIL:
                return None
            return _in_training(study, not_pid=first_pid)

        # 2. Then the whole command is killed in the middle of the next trial (a lost machine).
        second = _wait_for(failed_and_next, journal, "killed", proc)
        _kill_between_writes(journal, proc.pid, group=True)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    client = mlflow.MlflowClient(tracking)
    study = load_study("killed", journal)
    killed = study.trials[first.number]
    assert killed.state == TrialState.FAIL
    assert "stopped during the trial" in killed.user_attrs["fail_reason"]
    run = client.get_run(first.user_attrs["mlflow_run_id"])
    assert (run.info.status, run.data.tags["state"]) == ("FAILED", "FAIL")
    assert "stopped during the trial" in run.data.tags["fail_reason"]
    retries = [t for t in study.trials if t.system_attrs.get("failed_trial") == first.number]
    assert retries and retries[0].params == killed.params  # queued again with its parameters
    # Nobody was left to notice the second kill: RUNNING in Optuna and MLflow until a restart.
    assert study.trials[second.number].state == TrialState.RUNNING
    assert client.get_run(second.user_attrs["mlflow_run_id"]).info.status == "RUNNING"

    # The same command again cleans up first, then completes the budget.
    again = run_study(StudySpec.from_dict(raw), workers=2, storage=journal, cache_dir=feature_cache)
    assert not again.interrupted
    resumed = again.study
    assert resumed.trials[second.number].state == TrialState.FAIL
    assert client.get_run(second.user_attrs["mlflow_run_id"]).info.status == "FAILED"
    assert sum(t.state in FINISHED for t in resumed.trials) == 3
    assert not resumed.get_trials(states=(TrialState.RUNNING,))
    assert_one_run_per_trial(client, resumed)
    experiment = client.get_experiment_by_name("killed").experiment_id
    parents = client.search_runs([experiment], "tags.kind = 'study'")
    assert len(parents) == 2  # the killed command's parent run is closed as FAILED
    assert sorted(p.info.status for p in parents) == ["FAILED", "FINISHED"]


# -- PostgreSQL + mlflow server --------------------------------------------------------------------


@pytest.fixture()
def postgres_url() -> str:
    """The server's admin URL (``.ci/run`` starts one); skip with the reason where there is none."""
    url = os.environ.get("SPEECHPRINT_TEST_POSTGRES_URL")
    if not url:
        pytest.skip(
            "no PostgreSQL: set SPEECHPRINT_TEST_POSTGRES_URL (`.ci/run` does; locally "
            "`source .ci/postgres.sh && start_postgres`)"
        )
    return url


@pytest.fixture()
def databases(postgres_url: str) -> Iterator[tuple[str, str]]:
    """Two fresh databases on the server, one for Optuna and one for MLflow; dropped afterwards."""
    import psycopg

    admin = postgres_url.replace("postgresql+psycopg://", "postgresql://", 1)
    suffix = uuid.uuid4().hex[:8]
    names = (f"sp_optuna_{suffix}", f"sp_mlflow_{suffix}")
    with psycopg.connect(admin, autocommit=True, connect_timeout=10) as connection:
        for name in names:
            connection.execute(f'CREATE DATABASE "{name}"')
    base = postgres_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{names[0]}", f"{base}/{names[1]}"
    finally:
        with psycopg.connect(admin, autocommit=True, connect_timeout=10) as connection:
            for name in names:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _group_gone(server: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait until the server and its whole process group (web and job workers) have exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            try:
                os.killpg(server.pid, 0)
            except ProcessLookupError:
                return True
        time.sleep(0.2)
    return False


@pytest.fixture()
def mlflow_server(databases: tuple[str, str], tmp_path: Path) -> Iterator[str]:
    """``mlflow server`` on 127.0.0.1 with the PostgreSQL backend; stopped (and checked) at the end."""
    port = free_port()
    log = (tmp_path / "mlflow-server.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            databases[1],
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--artifacts-destination",
            str(tmp_path / "artifacts"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        # The job runner (a dozen background consumers for GenAI features) is not needed here.
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        start_new_session=True,  # its own process group: the web workers are stopped with it
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, (tmp_path / "mlflow-server.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "mlflow server did not answer /health in 120 s"
                time.sleep(0.5)
        yield uri
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        if not _group_gone(server, timeout=30):
            os.killpg(server.pid, signal.SIGKILL)
        log.close()
        assert _group_gone(server, timeout=30)  # the server and every process it started
        with socket.socket() as sock, pytest.raises(OSError):
            sock.connect(("127.0.0.1", port))


@pytest.mark.slow
@pytest.mark.postgres
def test_two_machines_share_postgres_and_an_mlflow_server(
    tiny_archive: Path,
    databases: tuple[str, str],
    mlflow_server: str,
    feature_cache: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    optuna_url = databases[0]
    raw = study_dict(tiny_archive, name="shared", n_trials=4)
    study_file = tmp_path / "shared.yaml"
    study_file.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.chdir(tmp_path)
    # Two "machines": the same command twice, at once, each one worker process.
    command = [
        sys.executable,
        "-m",
        "speechprint",
        "study",
        "run",
        str(study_file),
        "--storage",
        optuna_url,
        "--cache-dir",
        feature_cache,
    ]
    procs = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    try:
        outputs = [proc.communicate(timeout=300)[0] for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for proc, output in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, output

    study = load_study("shared", optuna_url)
    assert sum(t.state in FINISHED for t in study.trials) >= 4
    assert all(t.state != TrialState.RUNNING for t in study.trials)
    assert len({t.user_attrs["worker_pid"] for t in study.trials}) == 2  # both processes worked
    client = mlflow.MlflowClient(mlflow_server)
    children = assert_one_run_per_trial(client, study)
    assert len({r.data.tags["mlflow.parentRunId"] for r in children}) == 2  # a parent per process


# -- bad input -------------------------------------------------------------------------------------


def test_unreachable_storage_is_a_clear_error_before_any_work(
    tiny_archive: Path, tracking: str, tmp_path: Path
) -> None:
    spec = StudySpec.from_dict(study_dict(tiny_archive))
    url = f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/optuna"
    started = time.monotonic()
    with pytest.raises(StorageError, match=r"cannot open the Optuna storage .*127\.0\.0\.1"):
        run_study(spec, workers=2, storage=url, cache_dir=str(tmp_path / "cache"))
    assert time.monotonic() - started < 30
    assert not (tmp_path / "cache").exists()  # no feature extraction, no training
    assert mlflow.MlflowClient(tracking).get_experiment_by_name("scale") is None


@pytest.mark.slow
def test_mlflow_server_down_is_a_clear_error_before_any_work(
    tiny_archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study_file = tmp_path / "down.yaml"
    study_file.write_text(yaml.safe_dump(study_dict(tiny_archive)))
    journal = tmp_path / "down.journal.log"
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}"}
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "speechprint",
            "study",
            "run",
            str(study_file),
            "--workers",
            "2",
            "--storage",
            str(journal),
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert time.monotonic() - started < 60  # MLflow's own client would retry for minutes
    assert result.returncode == 2, result.stdout + result.stderr
    assert "cannot reach the MLflow tracking server" in result.stderr
    assert "Traceback" not in result.stderr
    assert not journal.exists() and not (tmp_path / "cache").exists()
    # Same check in the library, without the CLI.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", env["MLFLOW_TRACKING_URI"])
    with pytest.raises(TrackingError, match="cannot reach the MLflow tracking server"):
        run_study(StudySpec.from_dict(study_dict(tiny_archive)), workers=2, storage=str(journal))
