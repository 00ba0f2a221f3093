"""Time of the importance-sampled test NLL (K = 5000, the 10,000 MNIST test images): minivae vs PyTorch.

    MINIVAE_DATA=path/to/data python benchmarks/nll_eval.py                 # train 1 epoch, then both
    MINIVAE_DATA=path/to/data python benchmarks/nll_eval.py --checkpoint runs/vae-mnist/checkpoint.npz
    python benchmarks/nll_eval.py --images 1000 --only minivae              # a shorter run

The model is the lesson-03 VAE, 784-400-20, relu, Bernoulli decoder: from --checkpoint,
or trained here for --epochs epochs (Adam 1e-3, batch 128, dynamic binarization). Both
implementations then estimate log p(x) = log mean_k w_k for the same test images
(binarized once, seed 12345) with the same weights, the same K, the same batches of
images and the same samples per chunk, in float32 on the same threads; PyTorch runs
the same computation eagerly under torch.no_grad(). Prints one JSON line per
implementation (seconds, test NLL) and one with the ratio; the two NLLs differ only
by Monte-Carlo noise.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # the checkout

from machine import machine as machine_info  # benchmarks/machine.py

TEST_BINARIZATION_SEED = 12345


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=None, help="a VAE checkpoint (default: train one here)")
    p.add_argument("--epochs", type=int, default=1, help="epochs to train when no checkpoint is given")
    p.add_argument("--k", type=int, default=5000, help="importance samples per image")
    p.add_argument("--images", type=int, default=10000, help="the first N test images")
    p.add_argument("--batch", type=int, default=100, help="test images per call")
    p.add_argument("--chunk", type=int, default=None,
                   help="samples per chunk (default: minivae's choice for the batch, used by both)")  # fmt: skip
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", choices=("both", "minivae", "torch"), default="both")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # before NumPy or PyTorch is imported

    import minivae as mv
    from minivae.checkpoint import load_model
    from minivae.data import binarize_fixed, load_dataset
    from minivae.metrics import default_chunk

    mv.set_default_dtype("float32")
    trained_here = args.checkpoint is None
    if trained_here:
        args.checkpoint = train_one(args)
    model, _ = load_model(args.checkpoint, expect_kind="vae")
    x_test = binarize_fixed(load_dataset("mnist", "test").images, seed=TEST_BINARIZATION_SEED)
    x_test = x_test[: args.images].astype("float32")  # (N, 784)
    chunk = args.chunk or default_chunk(model, args.batch)
    common = {"k": args.k, "images": len(x_test), "batch": args.batch, "chunk": chunk,
              "threads": args.threads, "trained_epochs": args.epochs if trained_here else None}  # fmt: skip
    machine = machine_info()

    seconds = {}
    if args.only in ("both", "minivae"):
        mv.manual_seed(args.seed)
        t0 = time.perf_counter()
        nll = minivae_nll(model, x_test, args.k, args.batch, chunk)
        seconds["minivae"] = time.perf_counter() - t0
        print(json.dumps({"impl": "minivae", "seconds": round(seconds["minivae"], 1),
                          "test_nll": round(nll, 3), **common, "machine": machine}), flush=True)  # fmt: skip
    if args.only in ("both", "torch"):
        import torch

        torch.set_num_threads(args.threads)
        torch.manual_seed(args.seed)
        machine["torch"] = torch.__version__
        t0 = time.perf_counter()
        nll = torch_nll(torch, model.state_dict(), x_test, args.k, args.batch, chunk)
        seconds["torch"] = time.perf_counter() - t0
        print(json.dumps({"impl": "torch", "seconds": round(seconds["torch"], 1),
                          "test_nll": round(nll, 3), **common, "machine": machine}), flush=True)  # fmt: skip
    if len(seconds) == 2:
        print(json.dumps({"torch_seconds_over_minivae_seconds":
                          round(seconds["torch"] / seconds["minivae"], 3)}), flush=True)  # fmt: skip
    return 0


def train_one(args) -> str:
    from minivae.train import TrainConfig, train

    out = tempfile.mkdtemp(prefix="nll-eval-")
    config = TrainConfig(model={"kind": "vae", "x_dim": 784, "hidden": [400], "latent": 20,
                                "activation": "relu", "likelihood": "bernoulli"},
                         dataset="mnist", epochs=args.epochs, batch_size=128, optimizer="adam",
                         lr=1e-3, binarize="dynamic", n_val=0, seed=args.seed, progress=False)  # fmt: skip
    train(config, out, log=lambda *a: None)
    return os.path.join(out, "checkpoint.npz")


def minivae_nll(model, x, k: int, batch: int, chunk: int) -> float:
    """-mean log p(x) over x, from minivae.metrics (nats)."""
    from minivae import backend as B
    from minivae.metrics import importance_sampled_log_likelihood

    total = 0.0
    for start in range(0, len(x), batch):
        xb = B.from_numpy(x[start : start + batch])
        total += float(importance_sampled_log_likelihood(model, xb, k=k, chunk=chunk).sum())
    return -total / len(x)


def torch_nll(torch, state: dict, x, k: int, batch: int, chunk: int) -> float:
    """The same estimate in PyTorch, eager, float32: chunks of samples, running log-sum-exp."""
    w = {name: torch.from_numpy(a.astype("float32")) for name, a in state.items()}
    latent = w["encoder.layers.2.weight"].shape[1] // 2
    log_2pi = math.log(2 * math.pi)
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(x), batch):
            xb = torch.from_numpy(x[start : start + batch])  # (B, 784)
            h = torch.relu(xb @ w["encoder.layers.0.weight"] + w["encoder.layers.0.bias"])
            out = h @ w["encoder.layers.2.weight"] + w["encoder.layers.2.bias"]
            mu, log_var = out[:, :latent], out[:, latent:]  # (B, latent)
            std = torch.exp(0.5 * log_var)
            acc = None  # log sum_k w_k so far, (B,)
            done = 0
            while done < k:
                n = min(chunk, k - done)
                eps = torch.randn(n, *mu.shape)  # (n, B, latent)
                z = mu + std * eps
                hd = torch.relu(z @ w["decoder.layers.0.weight"] + w["decoder.layers.0.bias"])
                logits = hd @ w["decoder.layers.2.weight"] + w["decoder.layers.2.bias"]  # (n, B, 784)
                log_px = -torch.nn.functional.binary_cross_entropy_with_logits(
                    logits, xb.expand_as(logits), reduction="none").sum(-1)  # fmt: skip
                log_pz = -0.5 * (z * z + log_2pi).sum(-1)
                log_qz = -0.5 * (eps * eps + log_2pi + log_var).sum(-1)
                part = torch.logsumexp(log_px + log_pz - log_qz, dim=0)  # (B,)
                acc = part if acc is None else torch.logaddexp(acc, part)
                done += n
            total += float((acc - math.log(k)).sum())
    return -total / len(x)


if __name__ == "__main__":
    sys.exit(main())
