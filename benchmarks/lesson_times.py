"""Wall time of every lesson run in full: what a learner waits for.

    MINIVAE_DATA=path/to/data python benchmarks/lesson_times.py            # every lesson
    MINIVAE_DATA=path/to/data python benchmarks/lesson_times.py 06 07      # some of them
    python benchmarks/lesson_times.py --quick                              # the quick runs

Each lesson runs in its own process, exactly as ``python lessons/NN_name.py
--no-progress --out DIR`` would, one after the other, with nothing else of this
script running meanwhile. Pause other jobs while it runs: the numbers are the
machine's, not the lessons', when the cores are shared. ``MINIVAE_FAST=0 python
benchmarks/lesson_times.py`` times the lessons with the plain ops only (the children
inherit the setting, and the last line records it).

Prints one JSON line per lesson: its wall time in seconds, the time the lesson
itself reports in its summary.json, the dataset it used, and, where the lesson
trained with ``minivae.train`` and left a metrics log, the median seconds per epoch
of each such run (M2's epoch time is the one issue 18 asks for); then a line with
the total and the machine.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

from machine import machine  # benchmarks/machine.py


def lesson_files(wanted) -> list:
    """The numbered lessons, all of them or those whose number is in ``wanted``."""
    files = sorted(glob.glob(os.path.join(ROOT, "lessons", "[0-9][0-9]_*.py")))
    if wanted:
        files = [f for f in files if os.path.basename(f)[:2] in wanted]
        missing = set(wanted) - {os.path.basename(f)[:2] for f in files}
        if missing:
            raise SystemExit(f"no lesson numbered {', '.join(sorted(missing))} in lessons/")
    return files


def epoch_seconds(folder: str) -> dict:
    """{run folder: median seconds per epoch} of every metrics.jsonl below ``folder``."""
    out = {}
    for path in sorted(glob.glob(os.path.join(folder, "**", "metrics.jsonl"), recursive=True)):
        with open(path) as f:
            rows = [json.loads(line) for line in f if line.strip()]
        seconds = [row["seconds"] for row in rows if isinstance(row.get("seconds"), (int, float))]
        if seconds:
            out[os.path.relpath(os.path.dirname(path), folder)] = round(statistics.median(seconds), 2)
    return out


def run(path: str, out: str, quick: bool) -> dict:
    name = os.path.splitext(os.path.basename(path))[0]
    cmd = [sys.executable, path, "--no-progress", "--out", out] + (["--quick"] if quick else [])
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    row = {"lesson": name, "wall_s": round(seconds, 1), "exit_code": done.returncode}
    summary_path = os.path.join(out, name, "summary.json")
    if os.path.exists(summary_path):
        with open(summary_path) as f:
            summary = json.load(f)
        row["lesson_s"] = summary.get("seconds")
        row["dataset"] = summary.get("dataset")
    row["epoch_s"] = epoch_seconds(os.path.join(out, name))
    if done.returncode != 0:
        row["error"] = done.stderr.strip().splitlines()[-1:] or ["(no message)"]
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("lessons", nargs="*", help="lesson numbers (default: all)")
    p.add_argument("--quick", action="store_true", help="time the --quick runs instead")
    p.add_argument("--out", default=None, help="where the lessons write (default: a temporary folder)")
    args = p.parse_args(argv)
    files = lesson_files(args.lessons)
    total = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or tmp
        for path in files:
            row = run(path, out, args.quick)
            total += row["wall_s"]
            print(json.dumps(row), flush=True)
    print(json.dumps({"total_wall_s": round(total, 1), "lessons": len(files), "quick": args.quick,
                      "minivae_fast": os.environ.get("MINIVAE_FAST", "1"),
                      "command": " ".join(["python", "benchmarks/lesson_times.py", *(argv or sys.argv[1:])]),
                      "machine": machine()}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
