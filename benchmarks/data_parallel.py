"""Does splitting the batch over two threads speed up a training step?

    python benchmarks/data_parallel.py                 # batch 128 and 512, float32
    python benchmarks/data_parallel.py --batch 128 --repeats 7

The 784-400-20 VAE of benchmarks/throughput.py (Bernoulli pixels, Adam), trained two ways
on the same batch, alternating run by run so that drift in the machine's speed cancels:

  plain     the library's step: model.loss, backward, Adam, with OpenBLAS on 2 threads;
  parallel  data parallelism: two replicas of the model share the weight arrays (not
            copies), each thread runs model.loss and backward on its half of the batch
            with OpenBLAS on 1 thread, the two gradients are averaged and Adam steps
            once. The noise differs from the plain step's (each half draws its own), so
            only the speed is compared.

The OpenBLAS thread count is changed at run time through its own
``openblas_set_num_threads`` (NumPy's bundled OpenBLAS names it with a prefix); the
script stops with a message where it finds no OpenBLAS. Prints one JSON line per batch
size: samples per second of each (medians) and the median of the per-repeat ratios, and
the time of the parallel step's parts (the two halves at once, the averaging and Adam).
"""

from __future__ import annotations

import argparse
import copy
import ctypes
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")  # before NumPy is imported
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout

from machine import machine  # benchmarks/machine.py


def openblas_threads():
    """set_num_threads(n) of the OpenBLAS this process loaded, found in /proc/self/maps."""
    with open("/proc/self/maps") as f:
        paths = sorted({line.split()[-1] for line in f if "openblas" in line.lower()})
    for path in paths:
        lib = ctypes.CDLL(path)
        for name in ("openblas_set_num_threads", "scipy_openblas_set_num_threads64_",
                     "scipy_openblas_set_num_threads"):  # fmt: skip
            if hasattr(lib, name):
                fn = getattr(lib, name)
                fn.argtypes = [ctypes.c_int]
                return fn
    sys.exit("data_parallel.py: no OpenBLAS found in this process (NumPy built on another BLAS?)")


def measure(batch: int, args, set_threads, pool, argv) -> dict:
    """Both steps timed on one batch size, alternating; the JSON line's dict."""
    import numpy as np

    import minivae as mv
    from minivae import backend as B
    from minivae.data import Batch
    from minivae.models import VAE
    from minivae.optim import Adam

    mv.set_default_dtype("float32")
    x_host = (np.random.default_rng(1).random((batch, 784)) < 0.13).astype(np.float32)
    x = B.from_numpy(x_host)
    mv.manual_seed(0)
    model = VAE(x_dim=784, hidden=[400], latent=20, activation="relu", likelihood="bernoulli")
    opt = Adam(model.parameters(), lr=1e-3)
    params = model.parameters()
    shared = {id(p.data): p.data for p in params}  # deepcopy keeps these arrays, not copies
    replicas = [copy.deepcopy(model, shared) for _ in range(2)]
    halves = [Batch(x[: batch // 2]), Batch(x[batch // 2 :])]

    def plain():
        loss, _ = model.loss(Batch(x))
        opt.zero_grad()
        loss.backward()
        opt.step()

    def half(i):
        replicas[i].zero_grad()
        replicas[i].loss(halves[i])[0].backward()

    parts = {"halves": 0.0, "average_and_adam": 0.0}

    def parallel():
        t0 = time.perf_counter()
        other = pool.submit(half, 1)
        half(0)
        other.result()
        t1 = time.perf_counter()
        for p, a, b in zip(params, replicas[0].parameters(), replicas[1].parameters()):
            p.grad = 0.5 * (a.grad + b.grad)  # the mean over the whole batch
        opt.step()
        parts["halves"] += t1 - t0
        parts["average_and_adam"] += time.perf_counter() - t1

    def run(step, threads):
        set_threads(threads)
        for _ in range(10):
            step()
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step()
        return batch * args.steps / (time.perf_counter() - t0)

    rates = {"plain": [], "parallel": []}
    for r in range(args.repeats):
        order = [("plain", plain, 2), ("parallel", parallel, 1)]
        for name, step, threads in order if r % 2 == 0 else order[::-1]:
            rates[name].append(run(step, threads))
    set_threads(2)
    steps = args.repeats * (args.steps + 10)
    return {
        "batch": batch, "dtype": "float32", "steps": args.steps, "repeats": args.repeats,
        "plain_samples_per_s": round(statistics.median(rates["plain"]), 1),
        "parallel_samples_per_s": round(statistics.median(rates["parallel"]), 1),
        "parallel_over_plain": round(statistics.median(
            a / b for a, b in zip(rates["parallel"], rates["plain"])), 3),
        "parallel_ms_halves": round(1e3 * parts["halves"] / steps, 3),
        "parallel_ms_average_and_adam": round(1e3 * parts["average_and_adam"] / steps, 3),
        "machine": machine(threads=2),
        "command": "python benchmarks/data_parallel.py " + " ".join(sys.argv[1:]
                                                                   if argv is None else argv),
    }  # fmt: skip


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, nargs="+", default=[128, 512])
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)

    import numpy  # noqa: F401  (loads the OpenBLAS whose thread count the runs set)

    set_threads = openblas_threads()
    pool = ThreadPoolExecutor(1)  # the second thread; the first is this one
    for batch in args.batch:
        print(json.dumps(measure(batch, args, set_threads, pool, argv)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
