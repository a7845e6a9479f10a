"""Extraction workers do not outlive the process that started them (SIGTERM, SIGKILL, a crash)."""

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
from speechprint.features.processes import init_worker, mp_context

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
        deadline = time.monotonic() + 20  # the watch polls every second; their task sleeps 120 s
        while any(running(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(running(pid) for pid in workers), "workers outlived their parent"
    finally:
        if parent.poll() is None:
            parent.kill()
