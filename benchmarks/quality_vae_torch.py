"""The protocol of benchmarks/quality_vae.py in PyTorch: the peer behind its reference NLLs.

    MINIVAE_DATA=path/to/data python benchmarks/quality_vae_torch.py --milestones 10 --k 1000 --seed 0
    MINIVAE_DATA=path/to/data python benchmarks/quality_vae_torch.py --milestones 10 --init he

784-400-20 VAE, relu, Bernoulli decoder (logits), the analytic KL, one z per example; Adam
(lr 1e-3, PyTorch's defaults otherwise), batch 128 with the last smaller batch dropped, all
60000 MNIST training images binarized afresh every epoch, the 10000 test images binarized
once (seed 12345, the same images minivae scores). The loss is the negative ELBO averaged
over the batch, as in minivae. --init he swaps PyTorch's default initialisation of nn.Linear
(U(-1/sqrt(n_in), 1/sqrt(n_in)) for weights and biases) for minivae's (He-normal weights,
zero biases), the one difference between the two set-ups that the benchmark isolates.
Prints one JSON line per milestone, in the format of quality_vae.py. PyTorch is an optional
peer here: minivae itself never imports it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np
import torch
from torch import nn

from minivae.data import binarize_fixed, load_dataset

TEST_BINARIZATION_SEED = 12345  # as in quality_vae.py


class TorchVAE(nn.Module):
    def __init__(
        self, x_dim: int = 784, hidden: int = 400, latent: int = 20, init: str = "default"
    ):
        super().__init__()
        self.latent = latent
        self.encoder = nn.Sequential(
            nn.Linear(x_dim, hidden), nn.ReLU(), nn.Linear(hidden, 2 * latent)
        )
        self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, x_dim))
        if init == "he":  # minivae's: W ~ N(0, 2 / n_in), b = 0
            for layer in self.modules():
                if isinstance(layer, nn.Linear):
                    nn.init.normal_(layer.weight, 0.0, math.sqrt(2.0 / layer.in_features))
                    nn.init.zeros_(layer.bias)

    def posterior(self, x):
        mu, log_var = self.encoder(x).chunk(2, dim=-1)  # (B, J) each
        return mu, log_var

    def neg_elbo(self, x, eps=None):
        """-ELBO per example (B,): -log p(x|z) at one z = mu + sigma eps, plus the analytic KL."""
        mu, log_var = self.posterior(x)
        eps = torch.randn_like(mu) if eps is None else eps  # (B, J)
        z = mu + torch.exp(0.5 * log_var) * eps
        logits = self.decoder(z)
        nll = nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)
        kl = 0.5 * (mu.pow(2) + log_var.exp() - 1.0 - log_var).sum(-1)
        return nll + kl

    @torch.no_grad()
    def log_px(self, x, k: int, chunk: int = 250):
        """Importance-sampled log p(x) per example (B,) with k samples of q(z|x)."""
        mu, log_var = self.posterior(x)  # (B, J)
        std = torch.exp(0.5 * log_var)
        log_w = []
        for start in range(0, k, chunk):
            n = min(chunk, k - start)
            eps = torch.randn(n, *mu.shape, dtype=mu.dtype)  # (n, B, J)
            z = mu + std * eps
            logits = self.decoder(z)  # (n, B, D)
            log_px_z = -nn.functional.binary_cross_entropy_with_logits(
                logits, x.expand_as(logits), reduction="none").sum(-1)  # fmt: skip
            log_pz = -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(-1)
            log_qz = -0.5 * (eps.pow(2) + math.log(2 * math.pi) + log_var).sum(-1)
            log_w.append(log_px_z + log_pz - log_qz)  # (n, B)
        log_w = torch.cat(log_w)  # (k, B)
        return torch.logsumexp(log_w, dim=0) - math.log(k)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--milestones", type=int, nargs="+", default=[10])
    p.add_argument("--k", type=int, default=1000, help="importance samples at each milestone")
    p.add_argument(
        "--limit-test", type=int, default=None, help="evaluate on the first N test images"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init", choices=["default", "he"], default="default")
    p.add_argument(
        "--threads", type=int, default=None, help="torch.set_num_threads (default: PyTorch's)"
    )
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)  # shuffling and the binarization of each epoch
    x_train = np.asarray(load_dataset("mnist", "train").images, dtype=np.float32)  # (60000, 784)
    test = load_dataset("mnist", "test")
    x_test = torch.from_numpy(np.asarray(binarize_fixed(test.images, seed=TEST_BINARIZATION_SEED),
                                         dtype=np.float32)[: args.limit_test])  # fmt: skip
    model = TorchVAE(init=args.init)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch, steps = 128, len(x_train) // 128
    train_seconds, done = 0.0, 0
    for epochs in sorted(args.milestones):
        t0 = time.perf_counter()
        model.train()
        for _ in range(done, epochs):
            x_epoch = (rng.random(x_train.shape, dtype=np.float32) < x_train).astype(np.float32)
            order = rng.permutation(len(x_train))
            for s in range(steps):
                xb = torch.from_numpy(x_epoch[order[s * batch : (s + 1) * batch]])
                loss = model.neg_elbo(xb).mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        done = epochs
        train_seconds += time.perf_counter() - t0
        model.eval()
        with torch.no_grad():
            elbo = -float(torch.cat([model.neg_elbo(x_test[s : s + 1000])
                                     for s in range(0, len(x_test), 1000)]).mean())  # fmt: skip
        t1 = time.perf_counter()
        log_px = torch.cat(
            [model.log_px(x_test[s : s + 100], args.k) for s in range(0, len(x_test), 100)]
        )
        row = {"epochs": epochs, "k": args.k, "test_nll": round(-float(log_px.mean()), 2),
               "test_elbo": round(elbo, 2), "train_seconds": round(train_seconds, 1),
               "eval_seconds": round(time.perf_counter() - t1, 1), "n_test": len(x_test),
               "seed": args.seed, "init": args.init, "peer": f"torch {torch.__version__}",
               "date": time.strftime("%Y-%m-%d")}  # fmt: skip
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
