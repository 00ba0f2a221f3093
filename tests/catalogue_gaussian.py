"""Catalogue entries for the Gaussian ops (reparameterization, KL), added with those ops.

Each entry gives the minivae op, a plain NumPy reference of its forward, a float64
PyTorch counterpart (imported lazily, so the catalogue loads without torch), and
inputs in the op's domain: Cholesky factors get a positive diagonal and, on
purpose, nonzero entries above it, which the ops must ignore (zero gradient there).
"""

from __future__ import annotations

import numpy as np
from opcase import OpCase

from minivae import ops

LOG_2PI = np.log(2.0 * np.pi)


# ----------------------------------------------------------------------------- NumPy references


def np_reparameterize(mu, log_var, eps):
    return mu + np.exp(0.5 * log_var) * eps


def np_kl_normal_std(mu, log_var):
    mu, log_var = np.broadcast_arrays(mu, log_var)
    return 0.5 * (mu**2 + np.exp(log_var) - 1.0 - log_var).sum(axis=-1)


def np_kl_normal_normal(mq, vq, mp, vp):
    mq, vq, mp, vp = np.broadcast_arrays(mq, vq, mp, vp)
    return 0.5 * (vp - vq + (np.exp(vq) + (mq - mp) ** 2) / np.exp(vp) - 1.0).sum(axis=-1)


def np_cholesky_factor(log_diag, offdiag):
    d = log_diag.shape[-1]
    L = np.zeros(log_diag.shape + (d,))
    rows, cols = np.tril_indices(d, -1)
    L[..., rows, cols] = offdiag
    L[..., np.arange(d), np.arange(d)] = np.exp(log_diag)
    return L


def np_reparameterize_full(mu, L, eps):
    return mu + np.einsum("...ij,...j->...i", np.tril(L), eps)


def np_kl_full_std(mu, L):
    out = []
    for m, chol in zip(mu.reshape(-1, mu.shape[-1]), L.reshape(-1, *L.shape[-2:])):
        sigma = np.tril(chol) @ np.tril(chol).T
        _, logdet = np.linalg.slogdet(sigma)
        out.append(0.5 * (np.trace(sigma) + m @ m - len(m) - logdet))
    return np.array(out).reshape(mu.shape[:-1])


def np_full_gaussian_log_prob(z, mu, L):
    d = L.shape[-1]
    lead = np.broadcast_shapes(z.shape[:-1], mu.shape[:-1], L.shape[:-2])
    z, mu = np.broadcast_to(z, lead + (d,)), np.broadcast_to(mu, lead + (d,))
    L = np.broadcast_to(np.tril(L), lead + (d, d))
    out = np.empty(lead)
    for k in np.ndindex(*lead):
        sigma = L[k] @ L[k].T
        r = z[k] - mu[k]
        _, logdet = np.linalg.slogdet(sigma)
        out[k] = -0.5 * (d * LOG_2PI + logdet + r @ np.linalg.solve(sigma, r))
    return out


# ----------------------------------------------------------------------------- torch counterparts


def torch_reparameterize(mu, log_var, eps):
    return mu + (0.5 * log_var).exp() * eps


def torch_kl_normal_std(mu, log_var):
    import torch

    mu, log_var = torch.broadcast_tensors(mu, log_var)
    q = torch.distributions.Normal(mu, (0.5 * log_var).exp())
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    return torch.distributions.kl_divergence(q, p).sum(-1)


def torch_kl_normal_normal(mq, vq, mp, vp):
    import torch

    mq, vq, mp, vp = torch.broadcast_tensors(mq, vq, mp, vp)
    q = torch.distributions.Normal(mq, (0.5 * vq).exp())
    p = torch.distributions.Normal(mp, (0.5 * vp).exp())
    return torch.distributions.kl_divergence(q, p).sum(-1)


def torch_cholesky_factor(log_diag, offdiag):
    import torch

    d = log_diag.shape[-1]
    rows, cols = torch.tril_indices(d, d, -1)
    strict = torch.zeros(*log_diag.shape, d, dtype=log_diag.dtype)
    strict[..., rows, cols] = offdiag
    return torch.diag_embed(log_diag.exp()) + strict


def torch_reparameterize_full(mu, L, eps):
    return mu + (L.tril() @ eps.unsqueeze(-1)).squeeze(-1)


def _torch_mvn(mu, L):
    import torch

    return torch.distributions.MultivariateNormal(mu, scale_tril=L.tril())


def torch_kl_full_std(mu, L):
    import torch

    d = mu.shape[-1]
    prior = torch.distributions.MultivariateNormal(
        torch.zeros_like(mu), scale_tril=torch.eye(d, dtype=mu.dtype).expand(*mu.shape, d)
    )
    return torch.distributions.kl_divergence(_torch_mvn(mu, L), prior)


def torch_full_gaussian_log_prob(z, mu, L):
    return _torch_mvn(mu, L).log_prob(z)


# ----------------------------------------------------------------------------- inputs


def _chol(rng, *lead, d):
    """Square matrices with a positive diagonal, and (ignored) junk above the diagonal."""
    L = 0.5 * rng.standard_normal((*lead, d, d))
    idx = np.arange(d)
    L[..., idx, idx] = rng.uniform(0.5, 1.5, size=(*lead, d))
    return L


GAUSSIAN_CASES: list = [
    OpCase(
        "reparameterize",
        lambda mu, v, eps: ops.reparameterize(mu, v, eps),
        np_reparameterize,
        lambda rng: (rng.standard_normal((3, 4)), rng.standard_normal((3, 4)),
                     rng.standard_normal((3, 4))),
        torch_reparameterize,
        id="reparameterize",
    ),
    OpCase(
        "reparameterize",
        lambda mu, v, eps: ops.reparameterize(mu, v, eps),
        np_reparameterize,
        lambda rng: (rng.standard_normal((3, 4)), rng.standard_normal((3, 4)),
                     rng.standard_normal((2, 3, 4))),
        torch_reparameterize,
        tags=("broadcast",),
        id="reparameterize-samples",
    ),
    OpCase(
        "reparameterize",
        lambda mu, v, eps: ops.reparameterize(mu, v, eps),
        np_reparameterize,
        lambda rng: (rng.standard_normal((3, 1)), rng.standard_normal((4,)),
                     rng.standard_normal((2, 3, 4))),
        torch_reparameterize,
        tags=("broadcast",),
        id="reparameterize-broadcast",
    ),
    OpCase(
        "kl_normal_std",
        lambda mu, v: ops.kl_normal_std(mu, v),
        np_kl_normal_std,
        lambda rng: (rng.standard_normal((3, 4)), rng.standard_normal((3, 4))),
        torch_kl_normal_std,
        id="kl_normal_std",
    ),
    OpCase(
        "kl_normal_std",
        lambda mu, v: ops.kl_normal_std(mu, v),
        np_kl_normal_std,
        lambda rng: (rng.standard_normal((3, 1)), rng.standard_normal((1, 4))),
        torch_kl_normal_std,
        tags=("broadcast",),
        id="kl_normal_std-broadcast",
    ),
    OpCase(
        "kl_normal_normal",
        lambda mq, vq, mp, vp: ops.kl_normal_normal(mq, vq, mp, vp),
        np_kl_normal_normal,
        lambda rng: tuple(rng.standard_normal((3, 4)) for _ in range(4)),
        torch_kl_normal_normal,
        id="kl_normal_normal",
    ),
    OpCase(
        "kl_normal_normal",
        lambda mq, vq, mp, vp: ops.kl_normal_normal(mq, vq, mp, vp),
        np_kl_normal_normal,
        lambda rng: (rng.standard_normal((3, 4)), rng.standard_normal((3, 4)),
                     rng.standard_normal((4,)), rng.standard_normal((3, 1))),
        torch_kl_normal_normal,
        tags=("broadcast",),
        id="kl_normal_normal-broadcast",
    ),
    OpCase(
        "cholesky_factor",
        lambda ld, off: ops.cholesky_factor(ld, off),
        np_cholesky_factor,
        lambda rng: (rng.standard_normal((3, 4)), rng.standard_normal((3, 6))),
        torch_cholesky_factor,
        id="cholesky_factor",
    ),
    OpCase(
        "reparameterize_full",
        lambda mu, L, eps: ops.reparameterize_full(mu, L, eps),
        np_reparameterize_full,
        lambda rng: (rng.standard_normal((2, 3)), _chol(rng, 2, d=3), rng.standard_normal((2, 3))),
        torch_reparameterize_full,
        domain="cholesky",
        id="reparameterize_full",
    ),
    OpCase(
        "reparameterize_full",
        lambda mu, L, eps: ops.reparameterize_full(mu, L, eps),
        np_reparameterize_full,
        lambda rng: (rng.standard_normal((2, 3)), _chol(rng, 2, d=3),
                     rng.standard_normal((4, 2, 3))),
        torch_reparameterize_full,
        domain="cholesky",
        tags=("broadcast",),
        id="reparameterize_full-samples",
    ),
    OpCase(
        "kl_full_std",
        lambda mu, L: ops.kl_full_std(mu, L),
        np_kl_full_std,
        lambda rng: (rng.standard_normal((3, 3)), _chol(rng, 3, d=3)),
        torch_kl_full_std,
        domain="cholesky",
        id="kl_full_std",
    ),
    OpCase(
        "full_gaussian_log_prob",
        lambda z, mu, L: ops.full_gaussian_log_prob(z, mu, L),
        np_full_gaussian_log_prob,
        lambda rng: (rng.standard_normal((2, 3, 3)), rng.standard_normal((3, 3)),
                     _chol(rng, 3, d=3)),
        torch_full_gaussian_log_prob,
        domain="cholesky",
        tags=("broadcast",),
        id="full_gaussian_log_prob",
    ),
]
