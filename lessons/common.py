"""What every lesson shares: its command-line options, its output folder, its printed summary.

Each lesson's ``main(argv)`` calls ``parse_args`` and ``start`` and ends with
``finish``; nothing else is hidden here.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # run from a checkout without installing

import minivae as mv


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def lesson_options() -> argparse.ArgumentParser:
    """An empty parser for a lesson's own options, to fill and hand to parse_args(own=...)."""
    return argparse.ArgumentParser(add_help=False, usage=argparse.SUPPRESS)


def parse_args(argv, doc: str, default_dataset: str = "mnist", own=None) -> argparse.Namespace:
    """--quick, --device, --seed, --dataset, --out, --no-progress, for every lesson.

    own: a parser from ``lesson_options()`` holding the lesson's own options; they are
    read first, listed under --help, and merged into the returned namespace.
    """
    extra = {}
    if own is not None:
        argv = sys.argv[1:] if argv is None else list(argv)
        if "-h" in argv or "--help" in argv:  # the shared parser prints its help and exits
            print("options of this lesson:\n" + own.format_help().split("\n", 1)[-1])
        known, argv = own.parse_known_args(argv)
        extra = vars(known)
    p = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="a few seconds: tiny data and few steps (the smoke tests use it)")  # fmt: skip
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu", help="cpu (NumPy) or gpu (CuPy)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--dataset", default=default_dataset,
                   help=f"dataset (default {default_dataset}; falls back to built-in data offline)")  # fmt: skip
    p.add_argument("--out", default=os.path.join("runs", "lessons"),
                   help="folder for the lesson's figures and summary (default runs/lessons)")  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    for name, value in extra.items():
        setattr(args, name, value)
    return args


class Lesson:
    """The lesson's output folder, its clock, and the numbers it reports."""

    def __init__(self, name: str, args: argparse.Namespace):
        self.name, self.args = name, args
        self.dir = os.path.join(args.out, name)
        os.makedirs(self.dir, exist_ok=True)
        self.numbers: dict = {"lesson": name, "quick": bool(args.quick), "seed": args.seed}
        self.t0 = time.perf_counter()
        mv.set_device(args.device)
        mv.manual_seed(args.seed)

    def path(self, filename: str) -> str:
        return os.path.join(self.dir, filename)

    def report(self, key: str, value, text: str | None = None) -> None:
        """Record a number for summary.json and print it with its meaning."""
        if isinstance(value, float):
            value = float(f"{value:.6g}")  # six significant digits: 1e-13 stays 1e-13
        self.numbers[key] = value
        print(f"  {text or key}: {value}")

    def finish(self) -> dict:
        self.numbers["seconds"] = round(time.perf_counter() - self.t0, 1)
        with open(self.path("summary.json"), "w") as f:
            json.dump(self.numbers, f, indent=2)
        figures = sorted(f for f in os.listdir(self.dir) if f.endswith(".png"))
        print(f"{self.name}: {len(figures)} figures and summary.json in {self.dir}/ "
              f"({self.numbers['seconds']} s)")  # fmt: skip
        return self.numbers
