"""What the benchmark scripts record about the machine they ran on."""

from __future__ import annotations

import os
import platform
import time


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), or what platform knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine(**extra) -> dict:
    """CPU, cores, Python, NumPy version and today's date, plus what the caller adds."""
    import numpy

    return {"cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(),
            "numpy": numpy.__version__, "date": time.strftime("%Y-%m-%d"), **extra}  # fmt: skip
