"""What subnormal numbers cost, and what minivae's two flushes save.

    python benchmarks/subnormal.py [--repeats 7]

Prints one JSON line per measurement (medians over repeats, milliseconds):

1. ``a *= 0.9999`` over 262,144 float32 numbers, normal against subnormal;
2. one M2 training step (loss, backward) at batch 128 + 100 labelled, float32, with a
   classifier made confident (q(y|x) = e^-85 for the wrong classes, as after training),
   with minivae's class weights against the plain q(y|x) (``class_weights`` replaced by
   the identity): the plain weights feed subnormal gradients into the decoder. Both
   evaluate every class (``fast_sum_over_y=False``), so that only the flush differs;
3. 20 Adam steps (steps 101 to 120) over a 1024 x 256 float32 weight whose first quarter
   of rows gets no gradient and starts with first moments decayed to 1e-39 (a rarely-on
   pixel's rows), with the flush of M below ``finfo.tiny`` at every step, at every
   ``FLUSH_EVERY``-th step (the library's), and without it (milliseconds per 20).

The versions alternate repeat by repeat, so drift on a shared machine cancels.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import timeit

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout

from machine import machine  # benchmarks/machine.py

import minivae as mv
from minivae import backend as B
from minivae import fast
from minivae.data import Batch
from minivae.models import SemiSupervisedVAE
from minivae.models import m2 as m2_module

np = B.np


def alternate(fns: dict, repeats: int, number: int) -> dict:
    """Median milliseconds per call of each function, timed in alternating order."""
    times = {name: [] for name in fns}
    order = list(fns)
    for r in range(repeats):
        for name in order if r % 2 == 0 else order[::-1]:
            times[name].append(timeit.timeit(fns[name], number=number) / number * 1e3)
    return {name: round(statistics.median(ts), 4) for name, ts in times.items()}


def multiply_pass(repeats: int) -> dict:
    n = 262_144
    normal = np.full(n, 1e-3, dtype=np.float32)
    subnormal = np.full(n, 1e-40, dtype=np.float32)
    return alternate({"normal_ms": lambda: normal.__imul__(np.float32(1.0)),
                      "subnormal_ms": lambda: subnormal.__imul__(np.float32(1.0))},
                     repeats, 20)  # fmt: skip  # times 1.0: the values stay where they are


def m2_step(repeats: int) -> dict:
    mv.manual_seed(0)
    model = SemiSupervisedVAE(alpha=50.0)  # 784-500-(2 x 50), float32
    model.fast_sum_over_y = False  # every class evaluated: the flush alone is compared
    last = model.classifier.layers[-1]
    last.weight.data[...] = 0.0
    last.bias.data[...] = -85.0
    last.bias.data[0] = 0.0  # q(y|x) = 1 for class 0, e^-85 for the others
    rng = np.random.default_rng(0)
    xu = B.from_numpy((rng.random((128, 784)) < 0.13).astype(np.float32))
    xl = B.from_numpy((rng.random((100, 784)) < 0.13).astype(np.float32))
    yl = B.from_numpy(np.arange(100) % 10)

    def step():
        loss, _ = model.loss(Batch(xu, x_labelled=xl, y_labelled=yl))
        model.zero_grad()
        loss.backward()

    weights = m2_module.class_weights

    def plain():
        m2_module.class_weights = lambda q: q
        try:
            step()
        finally:
            m2_module.class_weights = weights

    return alternate({"class_weights_ms": step, "plain_q_ms": plain}, repeats, 3)


def adam_steps(repeats: int) -> dict:
    """20 Adam steps on a 1024 x 256 weight whose first quarter of rows gets no gradient
    (pixels that are off) and holds first moments that have decayed to 1e-39."""
    rng = np.random.default_rng(1)
    shape, rows = (1024, 256), 256
    w0 = rng.standard_normal(shape).astype(np.float32)
    g = (rng.standard_normal(shape) * 1e-3).astype(np.float32)
    g[:rows] = 0.0
    m0 = g.copy()
    m0[:rows] = 1e-39  # subnormal
    v0 = (g * g).astype(np.float32)
    v0[:rows] = 1e-8
    plain_flush = fast.flush_subnormal

    every = fast.FLUSH_EVERY

    def make(flush_every):
        def run():
            w = mv.Tensor(w0.copy(), requires_grad=True)
            opt = fast.Adam([w], lr=1e-3)  # the flush is part of the fast Adam only
            opt.g_sum[0][...], opt.g2_sum[0][...], opt.steps = m0, v0, 100
            if flush_every is None:
                fast.flush_subnormal = lambda a, tmp, mask: None
            else:
                fast.FLUSH_EVERY = flush_every
            try:
                for _ in range(20):
                    w.grad = g
                    opt.step()
            finally:
                fast.flush_subnormal, fast.FLUSH_EVERY = plain_flush, every

        return run

    return alternate({"flush_every_step_ms": make(1),
                      f"flush_every_{every}_steps_ms": make(every),  # the library's
                      "no_flush_ms": make(None)}, repeats, 3)  # fmt: skip


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args(argv)
    for name, fn in (("multiply_262144_float32", multiply_pass), ("m2_step_confident", m2_step),
                     ("adam_20_steps_1024x256", adam_steps)):  # fmt: skip
        t0 = time.perf_counter()
        row = {"measurement": name, **fn(args.repeats), "repeats": args.repeats,
               "seconds": round(time.perf_counter() - t0, 1), "machine": machine(),
               "command": " ".join(["python", "benchmarks/subnormal.py", *(argv or sys.argv[1:])])}
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
