"""A process pool whose workers do not outlive the script that started them.

The sweeps hand their trainings to worker processes. If the sweep itself is killed (``kill
PID`` from another shell, the kernel's out-of-memory killer), a plain pool's workers go on
with the training they hold, for hours, sharing the cores with whatever is timed next. Each
worker of ``pool`` watches its parent once a second and exits when the parent is gone.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor

POLL_SECONDS = 1.0


def _exit_with_parent() -> None:
    """Worker initializer: a daemon thread that ends this process once its parent is gone."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:  # a process whose parent dies is handed to another
            time.sleep(POLL_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def pool(jobs: int) -> ProcessPoolExecutor:
    """``jobs`` fresh ("spawn") worker processes, each of which exits when this process dies.

    Fresh processes read the environment at their start: set OPENBLAS_NUM_THREADS before.
    """
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(jobs, mp_context=context, initializer=_exit_with_parent)
