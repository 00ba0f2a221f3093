"""Run every lesson in order: the main job of minivae.

    python lessons/run_all.py            # full runs (MNIST, or built-in data offline)
    python lessons/run_all.py --quick    # seconds each: what the smoke tests run

Options after the script name are passed to every lesson (--quick, --device,
--seed, --dataset, --out, --no-progress). Each lesson runs exactly as
``python lessons/NN_name.py <options>`` would run it, so both forms of lesson work:
the notebook form (cells at module level, settings read by ``common.setup``) and
the older one with a ``main()``. Each writes its figures and summary.json under
runs/lessons/<lesson>/.
"""

from __future__ import annotations

import glob
import os
import runpy
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # the checkout, for lessons.common

from lessons.common import parse_args


def lesson_files() -> list:
    """The numbered lesson scripts, in order (00_..., 01_..., ...)."""
    return sorted(glob.glob(os.path.join(HERE, "[0-9][0-9]_*.py")))


def run_lesson(path: str, argv) -> dict:
    """Run one lesson as a script with the command line ``argv``; its namespace when done."""
    saved = sys.argv
    sys.argv = [path, *argv]
    try:
        return runpy.run_path(path, run_name="__main__")
    finally:
        sys.argv = saved


SHARED_OPTIONS = ("--quick", "--device", "--seed", "--dataset", "--out", "--no-progress")


def check_shared_options(argv) -> None:
    """Stop before the first lesson if argv holds an option that not every lesson takes."""
    names = [a.split("=")[0] for a in argv if a.startswith("--")]  # "--seed -1": -1 is a value
    others = [name for name in names if name not in SHARED_OPTIONS]
    if others:  # a usage error: said on stderr, exit code 2, as argparse does
        print(f"run_all.py: error: it passes its options to every lesson, so it takes only the "
              f"ones they all share ({', '.join(SHARED_OPTIONS)}), not {', '.join(others)}. An "
              f"option of one lesson goes to that lesson run on its own, for example "
              f"python lessons/06_semi_supervised_vae.py --epochs 3", file=sys.stderr)  # fmt: skip
        raise SystemExit(2)
    parse_args(argv, __doc__)  # the values: argparse says what is wrong with one


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "-h" in argv or "--help" in argv:
        print(__doc__)
        return 0
    check_shared_options(argv)
    t0 = time.perf_counter()
    for path in lesson_files():
        print(f"\n=== {os.path.basename(path)} ===", flush=True)
        run_lesson(path, argv)
    print(f"\nall {len(lesson_files())} lessons done in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
