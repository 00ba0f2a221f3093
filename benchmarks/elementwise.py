"""Timings behind single elementwise decisions: each fast form against the form it replaced.

    python benchmarks/elementwise.py            # 128 x 784 (a batch of logits), float32 and float64

Prints one JSON line per (dtype, pair): best-of-repeats milliseconds per call of the
replaced form and of minivae's form, the speed-up, and the largest relative difference.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import timeit

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", type=int, nargs=2, default=[128, 784])
    p.add_argument("--number", type=int, default=200, help="calls per repeat")
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args(argv)

    import numpy as np

    rng = np.random.default_rng(0)
    for dtype in ("float32", "float64"):
        logits = (rng.standard_normal(args.shape) * 3).astype(dtype)
        e = np.exp(-np.abs(logits))  # e^-|l| in (0, 1], as the Bernoulli likelihood makes it
        for name, (old, new) in pairs(np, logits, e).items():
            t_old = min(timeit.repeat(old, number=args.number, repeat=args.repeats)) / args.number
            t_new = min(timeit.repeat(new, number=args.number, repeat=args.repeats)) / args.number
            a, b = old(), new()
            rel = float(np.max(np.abs(a - b) / np.maximum(np.abs(a), np.finfo(dtype).tiny)))
            print(json.dumps({
                "dtype": dtype, "shape": args.shape, "what": name,
                "replaced_ms": round(t_old * 1e3, 4), "minivae_ms": round(t_new * 1e3, 4),
                "speedup": round(t_old / t_new, 2), "max_rel_difference": float(f"{rel:.3g}"),
            }), flush=True)  # fmt: skip
    return 0


def pairs(np, logits, e) -> dict:
    """{what: (the replaced form, minivae's form)}, each a function of no arguments."""
    from minivae.ops.elementwise import log1p_by_log, sigmoid_from_exp

    def masked_sigmoid():  # the replaced form: a masked multiply
        sig = np.reciprocal(e + 1.0)
        np.multiply(sig, e, out=sig, where=logits < 0)
        return sig

    return {
        "log(1 + e^-|l|)": (lambda: np.log1p(e), lambda: log1p_by_log(e)),
        "sigmoid(l) from e^-|l|": (masked_sigmoid, lambda: sigmoid_from_exp(logits, e)),
    }


if __name__ == "__main__":
    sys.exit(main())
