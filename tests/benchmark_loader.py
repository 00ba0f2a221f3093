"""Load a script of benchmarks/ as a module, so that a test can call its functions.

The scripts are not a package: each imports its neighbours (machine.py, throughput.py) by
plain name, so their folder goes on sys.path first.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def load_benchmark(filename: str):
    """benchmarks/<filename> as a module, e.g. load_benchmark("throughput.py")."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    path = BENCHMARKS / filename
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
