"""Run every lesson in order: the main job of minivae.

    python lessons/run_all.py            # full runs (MNIST, or built-in data offline)
    python lessons/run_all.py --quick    # seconds each: what the smoke tests run

Options after the script name are passed to every lesson (--quick, --device,
--seed, --dataset, --out, --no-progress). Each lesson writes its figures and
summary.json under runs/lessons/<lesson>/.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def lesson_files() -> list:
    """The numbered lesson scripts, in order (00_..., 01_..., ...)."""
    return sorted(glob.glob(os.path.join(HERE, "[0-9][0-9]_*.py")))


def load(path: str):
    name = "lesson_" + os.path.basename(path)[:-3]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "-h" in argv or "--help" in argv:
        print(__doc__)
        return 0
    t0 = time.perf_counter()
    for path in lesson_files():
        print(f"\n=== {os.path.basename(path)} ===", flush=True)
        load(path).main(argv)
    print(f"\nall {len(lesson_files())} lessons done in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
