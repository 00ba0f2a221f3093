"""β-VAE disentanglement on the built-in shapes, over β and seeds: MIG, per-factor gaps, rate.

    python benchmarks/beta_vae_sweep.py --jobs 2                      # lesson 04's set-up, 3 seeds
    python benchmarks/beta_vae_sweep.py --betas 4 8 --hidden 512 512 --epochs 60 --jobs 2
    python benchmarks/beta_vae_sweep.py --betas 1 4 8 16 20 --tc-beta 40 --batch-size 512 --epochs 100 --lr-schedule cosine --jobs 2

Protocol: the VAE of lesson 04 (x-H-(2 x latent) encoder, latent-H-x decoder, ReLU,
Bernoulli pixels, Adam) trained with ``minivae.train`` on the 40,000 training shapes of
``load_dataset("shapes")`` (its other 10,000 held out; the images are binary already and
are used as they are), with the seed setting the weights, the order and the noise: seed
0 is lesson 04's run.
Each model then encodes 10,000 fresh shapes (``make_shapes(10000, seed=2)``, as the
lesson does) and scores the means μ(x) with the mutual information gap (Chen et al. 2018;
each I(z_j; v_k) from a histogram of μ_j in 20 equal-width bins, as the lesson and
disentanglement_lib estimate it, each factor's gap divided by its entropy), the per-factor
gaps in the order shape, scale, orientation, pos_x, pos_y, the rate (the mean KL), the
active units (Cov_x μ > 0.01), and per unit its activity Cov_x μ_u and I(z_u; v_k) / H(v_k)
for each factor (``unit_mi``, one row per unit).

--tc-beta adds (tc_beta − 1) times the batch's total correlation to the loss: with β = 1
the β-TCVAE (Chen et al. 2018), with β > 1 a β-VAE whose TC is weighted more still.
Its estimate needs many neighbours in the batch: raise --batch-size with it.
--capacity C makes the rate a target instead (Burgess et al. 2018): the loss is the
reconstruction term plus β |KL − c| (β large: their γ), with c rising linearly from 0
to C nats over the first --warmup epochs; see ``VAE(capacity=...)``.
--lr-schedule cosine lets Adam's rate fall from --lr to 0 along a half cosine over the run
(``TrainConfig.lr_schedule``); lesson 04's Part 6 trains so.

Prints one JSON line per (β, seed) and, last, one summary line: for each β the mean and
standard deviation over seeds of the MIG and of each factor's gap, which β has the best
mean MIG, the machine and the exact command. --jobs N trains N models at once, each in
its own process with one BLAS thread.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, CHECKOUT)
sys.path.insert(0, os.path.join(CHECKOUT, "lessons"))  # for lessons/common.py

import workers  # benchmarks/workers.py
from machine import machine  # benchmarks/machine.py

N_MIG, MIG_SEED, MIG_BINS = 10_000, 2, 20  # lesson 04's evaluation set and histogram


def command(argv) -> str:
    return "python benchmarks/beta_vae_sweep.py " + " ".join(argv)


def run_one(args, beta: float, seed: int) -> dict:
    """Train one β-VAE and score it; a JSON-ready dict."""
    from minivae.train import TrainConfig, train

    model = {"kind": "vae", "x_dim": 32 * 32, "hidden": list(args.hidden), "latent": args.latent,
             "activation": "relu", "likelihood": "bernoulli", "beta": float(beta),
             "tc_beta": float(args.tc_beta)}  # fmt: skip
    if args.capacity is not None:
        model["capacity"] = float(args.capacity)
    config = TrainConfig(model=model, dataset="shapes", epochs=args.epochs,
                         batch_size=args.batch_size, lr=args.lr, lr_schedule=args.lr_schedule,
                         seed=seed, binarize="none", kl_warmup_epochs=args.warmup,
                         progress=False)  # fmt: skip
    folder = tempfile.mkdtemp(prefix=f"beta{beta:g}-seed{seed}-", dir=args.out)
    t0 = time.perf_counter()
    history = train(config, folder, log=lambda line: None)
    seconds = time.perf_counter() - t0
    row = {"beta": beta, "seed": seed, **score(os.path.join(folder, "checkpoint.npz"))}
    row.update(val_elbo=round(history[-1]["val_elbo"], 3), seconds=round(seconds, 1))
    return row


def score(checkpoint: str) -> dict:
    """MIG, per-factor gaps, rate and active units of a shapes VAE's checkpoint."""
    import common  # lessons/common.py: encode_mean, the batched μ(x) of a model
    import numpy as np

    from minivae import data as D
    from minivae import disentanglement as dis
    from minivae import metrics
    from minivae.checkpoint import load_model

    vae, _ = load_model(checkpoint, expect_kind="vae")
    vae.eval()
    fresh = D.make_shapes(N_MIG, seed=MIG_SEED)
    mu = common.encode_mean(vae, fresh.images)  # (N, latent)
    mig, mi = dis.mutual_information_gap(mu, fresh.factors, n_bins=MIG_BINS)
    entropies = np.array([dis.entropy(fresh.factors[:, k]) for k in range(fresh.factors.shape[1])])
    _, gaps = dis.mig_from_mi(mi, entropies)
    rate = metrics.evaluate(vae, fresh.images)["kl"]  # the mean KL(q(z|x) || p(z)), nats
    unit_mi = mi / entropies  # (latent, factors): I(z_u; v_k) / H(v_k), lesson 04's Part 3 matrix
    return {"mig": round(mig, 4),
            "gaps": dict(zip(D.FACTOR_NAMES, (round(float(g), 4) for g in gaps))),
            "rate": round(rate, 3), "active_units": int(metrics.active_units(mu)),
            "unit_activity": [round(float(a), 4) for a in metrics.unit_activity(mu)],
            "unit_mi": [[round(float(v), 3) for v in row] for row in unit_mi]}


def summarize(rows, names) -> dict:
    by_beta: dict = {}
    for row in rows:
        by_beta.setdefault(row["beta"], []).append(row)
    table = {}
    for beta, runs in sorted(by_beta.items()):
        migs = [r["mig"] for r in runs]
        table[f"{beta:g}"] = {
            "seeds": [r["seed"] for r in runs],
            "mig_mean": round(statistics.mean(migs), 4),
            "mig_sd": round(statistics.stdev(migs), 4) if len(migs) > 1 else None,
            "gap_means": {k: round(statistics.mean(r["gaps"][k] for r in runs), 4) for k in names},
            "rate_mean": round(statistics.mean(r["rate"] for r in runs), 3),
        }
    best = max(table, key=lambda b: table[b]["mig_mean"])
    return {"summary": table, "best_beta": float(best), "best_mig_mean": table[best]["mig_mean"]}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--betas", type=float, nargs="+", default=[1, 2, 4, 8, 16])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--hidden", type=int, nargs="+", default=[256])
    p.add_argument("--latent", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-schedule", default="constant", choices=["constant", "cosine"],
                   help="cosine: the learning rate falls from --lr to 0 over the run")
    p.add_argument("--tc-beta", type=float, default=1.0)
    p.add_argument("--capacity", type=float, default=None,
                   help="target rate C in nats, reached linearly over the run (Burgess et al.)")
    p.add_argument("--warmup", type=float, default=0.0,
                   help="epochs over which the KL weight (with --capacity: c) rises from 0")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--out", default=None, help="folder for the runs (default: a temporary one)")
    p.add_argument("--score", metavar="CHECKPOINT", default=None,
                   help="train nothing: score this checkpoint (a run stopped early, say)")
    args = p.parse_args(argv)
    if args.score:
        print(json.dumps({"checkpoint": args.score, **score(args.score)}), flush=True)
        return 0
    if args.out is not None:
        os.makedirs(args.out, exist_ok=True)
    else:
        args.out = tempfile.mkdtemp(prefix="beta-vae-sweep-")
    jobs = [(beta, seed) for beta in args.betas for seed in args.seeds]
    rows = []
    if args.jobs > 1:
        os.environ["OPENBLAS_NUM_THREADS"] = "1"  # read by each fresh worker's NumPy
        with workers.pool(args.jobs) as pool:
            futures = [pool.submit(run_one, args, b, s) for b, s in jobs]
            for f in futures:
                rows.append(f.result())
                print(json.dumps(rows[-1]), flush=True)
    else:
        for b, s in jobs:
            rows.append(run_one(args, b, s))
            print(json.dumps(rows[-1]), flush=True)
    from minivae.data import FACTOR_NAMES

    out = summarize(rows, FACTOR_NAMES)
    out.update(machine=machine(threads=1 if args.jobs > 1 else None), command=command(argv))
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
