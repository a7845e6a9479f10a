"""Stopping is clean: workers do not outlive their parent; SIGTERM interrupts as Ctrl-C does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc (Linux)")

PARENT = """
import os, sys, time
from concurrent.futures import ProcessPoolExecutor
from speechprint.core.processes import init_worker, mp_context

if __name__ == "__main__":
    pool = ProcessPoolExecutor(2, mp_context=mp_context(), initializer=init_worker,
                               initargs=(os.getpid(),))
    futures = [pool.submit(time.sleep, 120) for _ in range(2)]  # busy for two minutes
    while len(pool._processes) < 2:
        time.sleep(0.1)
    print(" ".join(str(pid) for pid in pool._processes), flush=True)
    time.sleep(120)
"""


def running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def gone_within(pids: list[int], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while any(running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    return not any(running(pid) for pid in pids)


def start_long_study(
    archive: Path, tmp_path: Path, name: str, *options: str, model: str = "logreg"
) -> subprocess.Popen[str]:
    """``speechprint study run`` of a 500-trial study in stores under ``tmp_path``, its output
    piped (unbuffered: workers' trial lines arrive as they run). ``mlp`` trials train 30 epochs
    (seconds each): a signal then lands inside a trial, not between two."""
    import yaml

    study_file = tmp_path / f"{name}.yaml"
    study_file.write_text(
        yaml.safe_dump(
            {
                "name": name,
                "data": {"archive": str(archive), "min_count": 3},
                "extractors": ["mfcc_mean"],
                "models": [model],
                "budget": {"n_trials": 500},
                "train": {"epochs": 30, "patience": 30, "max_frames": 100},
                "search_training": False,
                "pruner": {"name": "none"},
            }
        )
    )
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "SPEECHPRINT_ARTIFACT_ROOT": str(tmp_path / "mlruns"),
        "SPEECHPRINT_CACHE_DIR": str(tmp_path / "cache"),
        "PYTHONUNBUFFERED": "1",
    }
    command = [sys.executable, "-m", "speechprint", "study", "run", str(study_file), *options]
    return subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_workers_exit_when_their_parent_is_killed(how: signal.Signals, tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        workers = [int(pid) for pid in parent.stdout.readline().split()]  # type: ignore[union-attr]
        assert len(workers) == 2 and all(running(pid) for pid in workers)
        os.kill(parent.pid, how)
        parent.wait(timeout=30)
        # The watch polls every second; their task sleeps 120 s.
        assert gone_within(workers, 20), "workers outlived their parent"
    finally:
        if parent.poll() is None:
            parent.kill()


@pytest.mark.slow  # a study of trials that train for seconds, twice
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_interrupts_a_study_as_ctrl_c_does(
    tiny_archive: Path, tmp_path: Path, how: signal.Signals
) -> None:
    import optuna

    cli = start_long_study(tiny_archive, tmp_path, "long", model="mlp")
    try:
        lines = []
        for line in cli.stdout:  # type: ignore[union-attr]
            lines.append(line)
            if line.lstrip().startswith("trial    0 "):
                time.sleep(2.0)  # trial 1 is training now (seconds of epochs)
                cli.send_signal(how)
                break
        output = "".join(lines) + cli.communicate(timeout=120)[0]
    finally:
        if cli.poll() is None:
            cli.kill()
    assert cli.returncode == 130, output
    assert "Interrupted." in output and "Resume with: speechprint study run" in output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output  # no 25-line preamble
    study = optuna.load_study(
        study_name="long", storage=f"sqlite:///{tmp_path / 'studies' / 'long.db'}"
    )
    assert 2 <= len(study.trials) < 500
    # The signal stops trial 1 mid-training, or, when its KeyboardInterrupt lands in a finaliser
    # (dropped, remembered), the study at the end of a trial: either way within a trial or two,
    # not at the end of the budget.
    assert len(study.trials) <= 4, [t.state.name for t in study.trials]
    assert all(t.state.is_finished() for t in study.trials)  # none left RUNNING


def children(pid: int) -> list[int]:
    """Running processes whose parent is ``pid`` and that were started as spawned workers."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == pid and b"spawn_main" in cmdline and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


@pytest.mark.slow  # a study in worker processes
def test_study_workers_stop_when_their_parent_is_killed(tiny_archive: Path, tmp_path: Path) -> None:
    import optuna

    storage = tmp_path / "orphans.journal.log"
    cli = start_long_study(
        tiny_archive, tmp_path, "orphans", "--workers", "2", "--storage", str(storage)
    )
    try:
        for line in cli.stdout:  # type: ignore[union-attr]
            if "trial " in line and "COMPLETE" in line:  # "[worker-0] trial    0 COMPLETE ..."
                break
        workers = children(cli.pid)
        assert len(workers) == 2
        cli.kill()  # SIGKILL: no cleanup in the parent at all
        cli.wait(timeout=30)
        # Each closes its current trial first.
        assert gone_within(workers, 60), "study workers outlived their parent"
    finally:
        if cli.poll() is None:
            cli.kill()
    journal = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(storage))
    )
    trials = optuna.load_study(study_name="orphans", storage=journal).trials
    assert 1 <= len(trials) < 500
    assert all(t.state.is_finished() for t in trials)  # none left RUNNING


def test_a_stop_dropped_inside_a_finaliser_is_honoured_at_the_trials_end(
    tiny_archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python prints and drops an exception raised in a weakref callback, as it did to the
    KeyboardInterrupt of a worker's parent watch during a trial's garbage collection; the study
    must stop anyway, after that trial (later signals are ignored by then)."""
    import weakref

    import optuna

    from speechprint.core import stopping
    from speechprint.study.session import StudySession
    from speechprint.study.spec import StudySpec

    monkeypatch.setattr(stopping, "_requested", False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("SPEECHPRINT_ARTIFACT_ROOT", str(tmp_path / "mlruns"))
    spec = StudySpec.model_validate(
        {
            "name": "dropped",
            "data": {"archive": str(tiny_archive)},
            "extractors": ["mfcc_mean"],
            "models": ["logreg"],
            "budget": {"n_trials": 50},
        }
    )
    reported: list[int] = []

    class Model:
        pass

    def objective(trial: optuna.Trial) -> float:
        if trial.number == 1:
            model = Model()
            lost = weakref.ref(model, lambda _ref: stopping.raise_stop(signal.SIGINT, None))
            del model  # its KeyboardInterrupt goes nowhere
            assert lost() is None
        return 0.5

    with StudySession(spec, storage=f"sqlite:///{tmp_path / 'dropped.db'}") as session:
        session.optimize(objective, on_trial=lambda _study, trial: reported.append(trial.number))
    assert session.interrupted
    assert reported == [0, 1]  # trial 1 completed and was reported; no third trial started
    states = [t.state for t in session.study.trials]
    assert states == [optuna.trial.TrialState.COMPLETE] * 2


def test_a_parent_whose_stop_was_dropped_still_stops_its_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import multiprocessing

    from speechprint.core import stopping
    from speechprint.study import workers

    worker = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(60,))
    worker.start()
    try:
        monkeypatch.setattr(stopping, "_requested", True)  # its KeyboardInterrupt went nowhere
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):  # -> run_workers stops them, each closing its trial
            workers._wait_all([worker])
        assert time.monotonic() - started < 10 and worker.is_alive()
    finally:
        worker.kill()
        worker.join()
