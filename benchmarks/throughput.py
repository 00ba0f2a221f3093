"""Training throughput of the 784-400-20 VAE (Bernoulli decoder, Adam): minivae vs PyTorch vs a GEMM floor.

    python benchmarks/throughput.py                      # batch 128 and 512, float32 and float64
    python benchmarks/throughput.py --batch 128 --dtype float32 --repeats 7 --steps 100

For each configuration, every repeat times each implementation for ``--steps``
training steps (after warm-up), in an order that rotates from repeat to repeat so
that drift in the machine's speed cancels. It prints one JSON line per
configuration: samples per second (median over repeats) for
  minivae  the library's VAE on NumPy (or CuPy with --device gpu),
  torch    the same model in PyTorch, eager, on the same threads (when torch imports),
           with its default Adam (the target's peer),
  torch_best  the same, with PyTorch's fastest CPU Adam: ``fused=True`` or ``foreach=True``,
           whichever ran faster in a short trial before the timed repeats (named in the line),
  floor    only the matrix products one forward and backward need, in NumPy/CuPy,
and the ratios minivae/torch, minivae/torch_best and minivae/floor (medians of the
per-repeat ratios); also each contestant's minor page faults per timed step (medians), in its
process: glibc's malloc may hand freed memory back to the system between steps, and the
next step then faults it in again page by page, a cost that belongs to the allocator
(BENCHMARKS.md, "Page faults").

minivae's contestant keeps freed memory in its process (``minivae.memory``), as the
training loop does; in the one shared process that setting holds for PyTorch's steps too,
and with --isolate PyTorch's processes leave glibc's malloc as it is.

--isolate runs every timed run in a fresh Python process of its own (PyTorch's fused and
foreach Adam both timed, torch_best the faster), so that no contestant shares its process
with another's threads: NumPy's OpenBLAS workers keep spinning for a while after
minivae's matrix products, on the cores PyTorch then wants (BENCHMARKS.md, "Adam on two
threads").
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout

from machine import machine as machine_info  # benchmarks/machine.py

THREADS_DEFAULT = 2


def _set_threads(n: int) -> None:
    """Pin BLAS and OpenMP threads; must run before NumPy or PyTorch is imported."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, nargs="*", default=[128, 512])
    p.add_argument("--dtype", nargs="*", default=["float32", "float64"])
    p.add_argument("--steps", type=int, default=60, help="timed steps per run")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps before each run")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=THREADS_DEFAULT)
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch")
    p.add_argument("--isolate", action="store_true",
                   help="each timed run in a fresh process of its own")
    p.add_argument("--one", choices=ISOLATED, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    _set_threads(args.threads)
    if args.one:
        return time_one(args)
    if args.isolate:
        return run_isolated(args)

    import numpy as np

    import minivae as mv
    from minivae import backend as B

    mv.set_device(args.device)
    torch = None
    if not args.no_torch:
        try:
            import torch

            torch.set_num_threads(args.threads)
        except ImportError:
            torch = None

    machine = machine_info(threads=args.threads, torch=None if torch is None else torch.__version__,
                           device=args.device)  # fmt: skip
    if args.device == "gpu":
        machine["gpu"] = B.xp.cuda.runtime.getDeviceProperties(0)["name"].decode()
    print(json.dumps({"machine": machine}), flush=True)

    for dtype in args.dtype:
        for batch in args.batch:
            result = run_config(args, np, mv, B, torch, batch, dtype)
            result["machine"] = machine
            print(json.dumps(result), flush=True)
    return 0


# ----------------------------------------------------------------------------- the three contestants


def build_minivae(mv, B, batch, dtype, x_host):
    """The VAE, its Adam and one batch of x_host, from seed 0."""
    from minivae import fast
    from minivae.data import Batch
    from minivae.memory import keep_freed_memory
    from minivae.models import VAE
    from minivae.optim import Adam

    if fast.enabled:  # as minivae.train.train does before its first step
        keep_freed_memory()
    mv.set_default_dtype(dtype)
    mv.manual_seed(0)
    model = VAE(x_dim=784, hidden=[400], latent=20, activation="relu", likelihood="bernoulli")
    opt = Adam(model.parameters(), lr=1e-3)
    x = Batch(B.from_numpy(x_host[:batch], dtype=B.get_default_dtype()))
    return model, opt, x


def make_minivae(mv, B, batch, dtype, x_host):
    model, opt, x = build_minivae(mv, B, batch, dtype, x_host)

    def step():
        loss, _ = model.loss(x)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step, B.synchronize


def make_torch(torch, batch, dtype, x_host, device, adam_options=None):
    dev = "cuda" if device == "gpu" else "cpu"
    tdtype = getattr(torch, dtype)
    torch.manual_seed(0)
    nn = torch.nn

    class TorchVAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.Linear(784, 400)
            self.mu = nn.Linear(400, 20)
            self.lv = nn.Linear(400, 20)
            self.dec1 = nn.Linear(20, 400)
            self.dec2 = nn.Linear(400, 784)

        def forward(self, x):
            h = torch.relu(self.enc(x))
            mu, lv = self.mu(h), self.lv(h)
            z = mu + torch.exp(0.5 * lv) * torch.randn_like(mu)
            logits = self.dec2(torch.relu(self.dec1(z)))
            recon = -nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)
            kl = 0.5 * (mu * mu + lv.exp() - 1.0 - lv).sum(1)
            return -(recon - kl).mean()

    model = TorchVAE().to(dev, tdtype)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, **(adam_options or {}))
    x = torch.as_tensor(x_host[:batch], dtype=tdtype, device=dev)

    def step():
        loss = model(x)
        opt.zero_grad()
        loss.backward()
        opt.step()

    sync = torch.cuda.synchronize if device == "gpu" else (lambda: None)
    return step, sync


def make_floor(B, batch, dtype, x_host):
    """Only the GEMMs of one training step of the 784-400-20 VAE (mu and log-variance heads fused)."""
    xp = B.xp
    rng = B.np.random.default_rng(0)

    def arr(*shape):
        return xp.asarray(rng.standard_normal(shape), dtype=dtype)

    x = xp.asarray(x_host[:batch], dtype=dtype)  # (B, 784)
    w1, w2, w3, w4 = arr(784, 400), arr(400, 40), arr(20, 400), arr(400, 784)
    h, out, z, hd, logits = arr(batch, 400), arr(batch, 40), arr(batch, 20), arr(batch, 400), arr(batch, 784)

    def step():
        # forward: x W1, h W2 (mu | log-variance), z W3, hd W4
        xp.matmul(x, w1, out=h)
        xp.matmul(h, w2, out=out)
        xp.matmul(z, w3, out=hd)
        xp.matmul(hd, w4, out=logits)
        # backward: weight gradients of all four, input gradients of the last three
        _ = hd.T @ logits
        g_hd = logits @ w4.T
        _ = z.T @ g_hd
        _ = g_hd @ w3.T
        _ = h.T @ out
        _ = out @ w2.T
        _ = x.T @ h

    return step, B.synchronize


def _time(step, sync, steps, warmup) -> float:
    return _time_and_faults(step, sync, steps, warmup)[0]


def _time_and_faults(step, sync, steps, warmup) -> tuple:
    """(seconds of ``steps`` timed steps after ``warmup`` untimed ones, minor page faults per
    timed step in this process: memory the kernel had to hand over, one page at a time)."""
    for _ in range(warmup):
        step()
    sync()
    faults = _page_faults()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    seconds = time.perf_counter() - t0
    return seconds, (_page_faults() - faults) / steps


def _page_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def run_config(args, np, mv, B, torch, batch, dtype) -> dict:
    x_host = (np.random.default_rng(1).random((max(args.batch), 784)) < 0.13).astype(np.float64)
    contestants = {"minivae": make_minivae(mv, B, batch, dtype, x_host),
                   "floor": make_floor(B, batch, dtype, x_host)}  # fmt: skip
    best = None
    if torch is not None:
        contestants["torch"] = make_torch(torch, batch, dtype, x_host, args.device)
        best = fastest_torch_adam(torch, batch, dtype, x_host, args)
        contestants["torch_best"] = make_torch(torch, batch, dtype, x_host, args.device, best)
    names = list(contestants)
    rates, faults = {name: [] for name in names}, {name: [] for name in names}
    for r in range(args.repeats):
        order = names[r % len(names):] + names[: r % len(names)]  # rotate: drift cancels
        for name in order:
            step, sync = contestants[name]
            seconds, per_step = _time_and_faults(step, sync, args.steps, args.warmup)
            rates[name].append(batch * args.steps / seconds)
            faults[name].append(per_step)
    out = {"batch": batch, "dtype": dtype, "steps": args.steps, "repeats": args.repeats}
    for name in names:
        out[f"{name}_samples_per_s"] = round(statistics.median(rates[name]), 1)
    for name in names:
        out[f"{name}_page_faults_per_step"] = round(statistics.median(faults[name]), 1)
    if best is not None:
        out["torch_best_adam"] = next(iter(best))  # "fused" or "foreach"
    out.update(ratios(rates))
    return out


# ----------------------------------------------------------------------------- --isolate

ISOLATED = ("minivae", "floor", "torch", "torch_fused", "torch_foreach")
TORCH_ADAM = {"torch": None, "torch_fused": {"fused": True}, "torch_foreach": {"foreach": True}}


def time_one(args) -> int:
    """Child of --isolate: time one contestant once, print {"seconds": ...}."""
    import numpy as np

    import minivae as mv
    from minivae import backend as B

    mv.set_device(args.device)
    (batch,), (dtype,) = args.batch, args.dtype
    x_host = (np.random.default_rng(1).random((batch, 784)) < 0.13).astype(np.float64)
    if args.one == "minivae":
        step, sync = make_minivae(mv, B, batch, dtype, x_host)
    elif args.one == "floor":
        step, sync = make_floor(B, batch, dtype, x_host)
    else:
        import torch

        torch.set_num_threads(args.threads)
        step, sync = make_torch(torch, batch, dtype, x_host, args.device, TORCH_ADAM[args.one])
    seconds, per_step = _time_and_faults(step, sync, args.steps, args.warmup)
    print(json.dumps({"seconds": seconds, "page_faults_per_step": per_step}), flush=True)
    return 0


def run_isolated(args) -> int:
    """Every timed run in its own process, rotating the order from repeat to repeat."""
    try:
        import torch

        torch_version = torch.__version__
    except ImportError:
        torch_version = None
    with_torch = torch_version is not None and not args.no_torch
    names = list(ISOLATED) if with_torch else ["minivae", "floor"]
    machine = machine_info(threads=args.threads, torch=torch_version, device=args.device)
    machine["isolated"] = True
    print(json.dumps({"machine": machine}), flush=True)
    for dtype in args.dtype:
        for batch in args.batch:
            rates, faults = {name: [] for name in names}, {name: [] for name in names}
            for r in range(args.repeats):
                for name in names[r % len(names):] + names[: r % len(names)]:
                    cmd = [sys.executable, os.path.abspath(__file__), "--one", name,
                           "--batch", str(batch), "--dtype", dtype, "--steps", str(args.steps),
                           "--warmup", str(args.warmup), "--threads", str(args.threads),
                           "--device", args.device]  # fmt: skip
                    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
                    timed = json.loads(done.stdout.strip().splitlines()[-1])
                    rates[name].append(batch * args.steps / timed["seconds"])
                    faults[name].append(timed["page_faults_per_step"])
            out = {"batch": batch, "dtype": dtype, "steps": args.steps, "repeats": args.repeats,
                   "isolated": True}  # fmt: skip
            if "torch" in rates:  # the faster of PyTorch's two fast Adams is its best
                fast_adam = max(("torch_fused", "torch_foreach"),
                                key=lambda n: statistics.median(rates[n]))  # fmt: skip
                for d in (rates, faults):
                    d["torch_best"] = d.pop(fast_adam)
                    d.pop("torch_fused" if fast_adam == "torch_foreach" else "torch_foreach")
                out["torch_best_adam"] = fast_adam.removeprefix("torch_")
            for name, values in rates.items():
                out[f"{name}_samples_per_s"] = round(statistics.median(values), 1)
            for name, values in faults.items():
                out[f"{name}_page_faults_per_step"] = round(statistics.median(values), 1)
            out.update(ratios(rates))
            out["machine"] = machine
            print(json.dumps(out), flush=True)
    return 0


def ratios(rates) -> dict:
    """minivae over floor, torch and torch_best: medians of the per-repeat ratios."""
    ratio = lambda a, b: round(statistics.median(x / y for x, y in zip(rates[a], rates[b])), 3)
    out = {"minivae_over_floor": ratio("minivae", "floor")}
    if "torch" in rates:
        out["minivae_over_torch"] = ratio("minivae", "torch")
        out["torch_over_floor"] = ratio("torch", "floor")
        out["minivae_over_torch_best"] = ratio("minivae", "torch_best")
    return out


def fastest_torch_adam(torch, batch, dtype, x_host, args) -> dict:
    """{"fused": True} or {"foreach": True}: whichever trains faster here (a short untimed-in-the-
    results trial of both, three alternating runs each), so the peer column is PyTorch at its best."""
    choices = [{"fused": True}, {"foreach": True}]
    seconds = {0: [], 1: []}
    steps = max(10, args.steps // 3)
    for _ in range(3):
        for k, options in enumerate(choices):
            try:
                step, sync = make_torch(torch, batch, dtype, x_host, args.device, options)
                seconds[k].append(_time(step, sync, steps, args.warmup))
            except (RuntimeError, TypeError):  # fused Adam not supported for this dtype/device
                seconds[k].append(float("inf"))
    return choices[min(seconds, key=lambda k: statistics.median(seconds[k]))]


if __name__ == "__main__":
    sys.exit(main())
