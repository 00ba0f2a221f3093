"""Test NLL of the VAE of lesson 03 (Part 3) against PyTorch's figures for the same protocol.

    MINIVAE_DATA=path/to/data python benchmarks/quality_vae.py --milestones 10 30 100 --k 1000 --k-final 5000

Protocol (the quality bar of lessons 02-03): 784-400-20 VAE, relu, Bernoulli
decoder, Adam 1e-3, batch 128, dynamically binarized MNIST (all 60000 training
images, a fresh binarization each epoch), the 10000 test images binarized once.
One run trains to each milestone in turn (resuming exactly from its checkpoint)
and estimates log p(x) there with K importance samples. Prints one JSON line per
milestone with the test NLL, the ELBO, the training wall time, and the PyTorch
reference measured on the same machine with the same protocol.
The layers start as PyTorch's nn.Linear does (--init uniform, as lesson 03 does); --init he
gives the library's default for relu nets, with which the figures before 2026-12-07 were
measured. benchmarks/quality_vae_torch.py trains the same protocol in PyTorch
(BENCHMARKS.md, "Where the gap comes from").
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import minivae as mv
from minivae import backend as B
from minivae.checkpoint import load_model
from minivae.data import binarize_fixed, load_dataset
from minivae.metrics import evaluate, importance_sampled_log_likelihood
from minivae.train import TrainConfig, train

TORCH_REFERENCE = {10: {1000: 97.1}, 30: {1000: 93.9}, 100: {1000: 91.6, 5000: 91.3}}
TEST_BINARIZATION_SEED = 12345


def test_nll(model, x, k: int, batch: int = 100) -> float:
    """Mean over the test set of -log p(x), importance-sampled with k samples (nats)."""
    total = 0.0
    for start in range(0, len(x), batch):
        xb = B.from_numpy(x[start : start + batch], dtype=B.get_default_dtype())
        total += float(importance_sampled_log_likelihood(model, xb, k=k).sum())
    return -total / len(x)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--milestones", type=int, nargs="+", default=[10, 30, 100])
    p.add_argument("--k", type=int, default=1000, help="importance samples at each milestone")
    p.add_argument("--k-final", type=int, default=5000, help="also this K at the last milestone (0: skip)")
    p.add_argument("--limit-test", type=int, default=None, help="evaluate on the first N test images")
    p.add_argument("--out", default=None, help="run folder (default: a temporary one)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init", choices=["he", "uniform"], default="uniform",
                   help="the layers' initialisation (default: uniform, PyTorch's nn.Linear "
                        "default, as in lesson 03; he: the library's default for relu nets)")
    args = p.parse_args(argv)

    out = args.out or tempfile.mkdtemp(prefix="quality-vae-")
    test = load_dataset("mnist", "test")
    x_test = binarize_fixed(test.images, seed=TEST_BINARIZATION_SEED)[: args.limit_test]
    model_config = {"kind": "vae", "x_dim": 784, "hidden": [400], "latent": 20,
                    "activation": "relu", "likelihood": "bernoulli", "init": args.init}  # fmt: skip
    train_seconds = 0.0
    for k_done, epochs in enumerate(sorted(args.milestones)):
        config = TrainConfig(model=dict(model_config), dataset="mnist", epochs=epochs,
                             batch_size=128, optimizer="adam", lr=1e-3, binarize="dynamic",
                             n_val=0, seed=args.seed, progress=False)  # fmt: skip
        t0 = time.perf_counter()
        train(config, out, resume=k_done > 0, log=lambda *a: None)
        train_seconds += time.perf_counter() - t0
        model, _ = load_model(os.path.join(out, "checkpoint.npz"))
        mv.manual_seed(args.seed)
        elbo = evaluate(model, x_test)["elbo"]
        ks = [args.k] + ([args.k_final] if epochs == max(args.milestones) and args.k_final else [])
        for k in ks:
            t1 = time.perf_counter()
            nll = test_nll(model, x_test, k)
            row = {"epochs": epochs, "k": k, "test_nll": round(nll, 2), "test_elbo": round(elbo, 2),
                   "train_seconds": round(train_seconds, 1),
                   "eval_seconds": round(time.perf_counter() - t1, 1),
                   "n_test": len(x_test), "seed": args.seed, "init": args.init,
                   "torch_reference_nll": TORCH_REFERENCE.get(epochs, {}).get(k),
                   "date": time.strftime("%Y-%m-%d")}  # fmt: skip
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
