"""benchmarks/workers.py: a sweep's worker processes end when the sweep is killed.

A driver script starts a pool of one worker, which writes its pid and then sleeps for two
minutes; the test kills the driver with SIGKILL (no clean-up of any kind runs) and expects
the worker gone within a few seconds. A plain ProcessPoolExecutor fails this: its worker
sleeps on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from benchmark_loader import BENCHMARKS

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

DRIVER = textwrap.dedent(
    """
    import os, sys, time
    sys.path.insert(0, sys.argv[2])
    import workers

    def sleep_and_report(path):
        with open(path + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.replace(path + ".tmp", path)
        time.sleep(120)

    if __name__ == "__main__":
        with workers.pool(1) as pool:
            pool.submit(sleep_and_report, sys.argv[1]).result()
    """
)


def running(pid: int) -> bool:
    """True while pid is a live process (not gone, not a zombie waiting to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_worker_exits_when_the_script_that_started_it_is_killed(tmp_path):
    script, pid_file = tmp_path / "driver.py", tmp_path / "worker.pid"
    script.write_text(DRIVER)
    driver = subprocess.Popen([sys.executable, str(script), str(pid_file), str(BENCHMARKS)])
    worker = None
    try:
        assert wait_for(pid_file.exists, 60), "the worker never started"
        worker = int(pid_file.read_text())
        assert worker != driver.pid and running(worker)
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=10)
        # the worker polls once a second (workers.POLL_SECONDS)
        assert wait_for(lambda: not running(worker), 10), "the worker outlived its parent"
    finally:
        driver.kill()
        if worker is not None and running(worker):
            os.kill(worker, signal.SIGKILL)
