"""Does a second thread help minivae's training step? Adam's update split over two threads.

    python benchmarks/adam_threads.py --batch 128 512
    OPENBLAS_THREAD_TIMEOUT=4 python benchmarks/adam_threads.py --batch 128 512

The 784-400-20 VAE of benchmarks/throughput.py, float32, on 2 threads, three contestants
timed in turn, rotating from repeat to repeat:
  plain   minivae's training step as it is (Adam on one thread, as everything outside BLAS),
  split   the same step with each large parameter's Adam update (2^15 entries or more) cut
          into two halves, one half on a worker thread and one on the calling thread (NumPy's
          ufuncs release the GIL); every entry sees the same operations in the same order,
          so the weights are the same to the bit (checked before timing),
  torch   PyTorch's step with its default Adam, in the same process.
OpenBLAS's idle worker threads spin for a while after each matrix product before they
sleep, on the core that a second Python thread would use; OPENBLAS_THREAD_TIMEOUT (read
when NumPy loads: 4 to 30, the spin lasting about 2^N cycles) shortens that spin, so the
command is run with and without it. The timeout reaches the PyTorch contestant too: NumPy's
spinning threads share the cores with PyTorch's. Prints one JSON line per batch size:
samples per second (medians over repeats) and the ratios to torch.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout

import throughput  # benchmarks/throughput.py: the contestants and the timing loop
from machine import machine as machine_info  # benchmarks/machine.py

SPLIT_MIN = 1 << 15  # arrays smaller than this are updated on the calling thread


def split_adam(opt, pool) -> None:
    """Make opt (a minivae.fast.Adam) update each large parameter in two halves, one on pool."""
    from minivae import fast

    plain = opt.update  # the whole-array update, for the small parameters

    def update(k, w, g):
        if w.size < SPLIT_MIN:
            return plain(k, w, g)
        arrays = [a.reshape(-1) for a in (w, g, opt.g_sum[k], opt.g2_sum[k], opt.scratch[k],
                                          opt.subnormal[k])]  # fmt: skip
        half = w.size // 2

        def part(lo, hi):
            w_, g_, m_, v_, tmp, mask = (a[lo:hi] for a in arrays)
            fast.adam_on_decayed_sums(w_, g_, m_, v_, tmp, opt.b1, opt.b2, opt._step_size, opt._eps)
            fast.flush_subnormal(m_, tmp, mask)

        other = pool.submit(part, 0, half)
        part(half, w.size)
        other.result()

    opt.update = update


def make_minivae(batch, x_host, pool=None):
    """A training step of the VAE and its model; with pool, Adam's update is split over it."""
    import minivae as mv
    from minivae import backend as B

    model, opt, x = throughput.build_minivae(mv, B, batch, "float32", x_host)
    if pool is not None:
        split_adam(opt, pool)

    def step():
        loss, _ = model.loss(x)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step, model


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, nargs="*", default=[128, 512])
    p.add_argument("--steps", type=int, default=60, help="timed steps per run")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps before each run")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    throughput._set_threads(2)

    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    import torch

    torch.set_num_threads(2)
    timeout = os.environ.get("OPENBLAS_THREAD_TIMEOUT", "default")
    machine = machine_info(threads=2, torch=torch.__version__)
    pool = ThreadPoolExecutor(1)
    x_host = (np.random.default_rng(1).random((max(args.batch), 784)) < 0.13).astype(np.float64)
    for batch in args.batch:
        # the split update must leave the same weights as the plain one, to the bit: three
        # steps of each from the same start and the same draws of the noise
        models = []
        for with_pool in (None, pool):
            step, model = make_minivae(batch, x_host, with_pool)  # seeds the generator
            for _ in range(3):
                step()
            models.append(model)
        same = all(np.array_equal(a.data, b.data)
                   for a, b in zip(models[0].parameters(), models[1].parameters()))  # fmt: skip
        if not same:
            raise SystemExit("adam_threads: the split Adam update changed the weights")
        contestants = {
            "plain": (make_minivae(batch, x_host)[0], lambda: None),
            "split": (make_minivae(batch, x_host, pool)[0], lambda: None),
            "torch": throughput.make_torch(torch, batch, "float32", x_host, "cpu"),
        }
        names = list(contestants)
        rates = {name: [] for name in names}
        for r in range(args.repeats):
            for name in names[r % 3:] + names[: r % 3]:
                step, sync = contestants[name]
                seconds = throughput._time(step, sync, args.steps, args.warmup)
                rates[name].append(batch * args.steps / seconds)
        out = {"batch": batch, "dtype": "float32", "openblas_thread_timeout": timeout,
               "same_weights": same}  # fmt: skip
        for name in names:
            out[f"{name}_samples_per_s"] = round(statistics.median(rates[name]), 1)
        for name in ("plain", "split"):
            out[f"{name}_over_torch"] = round(
                statistics.median(a / b for a, b in zip(rates[name], rates["torch"])), 3)
        out["machine"] = machine
        print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
