"""Distributions of the VAE: Gaussians with the reparameterization trick, KLs, log-likelihoods.

THE REDUCTION CONVENTION (written once, here; models, lessons and metrics cite it)
---------------------------------------------------------------------------------
Every log-density and every KL in this module is a SUM over the data dimensions
(pixels) or the latent dimensions of one example, and returns one number per
example: shape (B,), or (L, B) for L samples of z. Models average over samples
(a Monte-Carlo estimate of an expectation) and then MEAN over the batch, so every
number a lesson prints is in nats per example. Never average over pixels and sum
over latents (or the reverse): that silently rescales the KL against the
reconstruction term, a hidden beta (Higgins et al. 2017) of D_x / D_z or its inverse.

Parameters
----------
A diagonal Gaussian is given by its mean mu and its log-variance v = log sigma^2,
as the encoder outputs them. The standard deviation is sigma = exp(v / 2), and
``minivae.ops.gaussian.std_from_log_var`` is the one place that computes it: the
sampler (``ops.reparameterize``) and the KLs (``ops.kl_normal_std``,
``ops.kl_normal_normal``) both go through it, and a test checks that samples drawn
with v = log 4 have standard deviation 2 while the KL uses sigma^2 = 4.

Randomness: ``sample`` draws eps ~ N(0, I) from ``minivae.backend.rng()`` and calls
the reparameterization op; pass ``eps=`` instead to fix the noise (tests, figures).
"""

from __future__ import annotations

import math
import numbers

from minivae import backend as B
from minivae import fast, ops
from minivae.ops.gaussian import std_from_log_var
from minivae.tensor import Tensor, as_tensor


def standard_normal(shape, dtype=None):
    """eps ~ N(0, I) of ``shape`` from the backend's generator, as a raw array of ``dtype``."""
    dtype = dtype or B.get_default_dtype()
    return B.rng().standard_normal(size=tuple(shape), dtype=dtype)


def _sample_shape(n_samples, shape) -> tuple:
    if n_samples is None:
        return tuple(shape)
    if not isinstance(n_samples, numbers.Integral) or isinstance(n_samples, bool) or n_samples <= 0:
        raise ValueError(f"n_samples must be a positive integer or None, got {n_samples!r}")
    return (int(n_samples), *shape)


class DiagonalGaussian:
    """N(mu, diag(sigma^2)) with mu, log_var = log sigma^2 Tensors of shape (B, D)."""

    def __init__(self, mu, log_var):
        self.mu = as_tensor(mu)  # (B, D)
        self.log_var = as_tensor(log_var)  # (B, D), log sigma^2
        ops.broadcast_shapes("DiagonalGaussian", self.mu.shape, self.log_var.shape)

    @property
    def std(self) -> Tensor:
        """sigma = exp(log_var / 2), for display; the ops read log_var themselves (same formula)."""
        return Tensor(std_from_log_var(self.log_var.data))

    def sample(self, n_samples: int | None = None, eps=None) -> Tensor:
        """z = mu + sigma * eps: shape (B, D), or (n_samples, B, D); eps fixes the noise."""
        shape = ops.broadcast_shapes("DiagonalGaussian", self.mu.shape, self.log_var.shape)
        if eps is None:
            eps = standard_normal(_sample_shape(n_samples, shape), self.mu.dtype)
        return ops.reparameterize(self.mu, self.log_var, eps)

    def log_prob(self, z) -> Tensor:
        """log N(z | mu, sigma^2), summed over the last axis: (..., B, D) -> (..., B)."""
        return ops.gaussian_log_prob(z, self.mu, self.log_var).sum(axis=-1)

    def kl_to_standard(self) -> Tensor:
        """KL(self || N(0, I)) per example, in closed form (Computational Intelligence Lab, Series 9, Problem 1.7): (B,)."""
        return ops.kl_normal_std(self.mu, self.log_var)

    def kl(self, other: DiagonalGaussian) -> Tensor:
        """KL(self || other) per example, in closed form: (B,)."""
        return ops.kl_normal_normal(self.mu, self.log_var, other.mu, other.log_var)

    def entropy(self) -> Tensor:
        """H = 1/2 sum_d (log 2pi + 1 + log sigma_d^2) per example: (B,)."""
        d = self.log_var.shape[-1]
        return 0.5 * self.log_var.sum(axis=-1) + 0.5 * d * (B.LOG_2PI + 1.0)


class FullGaussian:
    """N(mu, L L^T) with mu (B, D) and a lower-triangular L (B, D, D) with positive diagonal.

    Build L from unconstrained numbers with ``ops.cholesky_factor(log_diag, offdiag)``
    (the blog post 'Variational Autoencoders' (2018): z = mu + L eps with Sigma = L L^T).
    """

    def __init__(self, mu, L):
        self.mu = as_tensor(mu)  # (B, D)
        self.L = as_tensor(L)  # (B, D, D)
        if self.L.shape != self.mu.shape + self.mu.shape[-1:]:
            raise ValueError(
                f"FullGaussian: mu of shape {self.mu.shape} needs L of shape "
                f"{self.mu.shape + self.mu.shape[-1:]}, got {self.L.shape}"
            )

    @classmethod
    def from_unconstrained(cls, mu, log_diag, offdiag) -> FullGaussian:
        """mu (B, D), log_diag (B, D), offdiag (B, D(D-1)/2): an encoder's raw outputs."""
        return cls(mu, ops.cholesky_factor(log_diag, offdiag))

    @property
    def covariance(self):
        """Sigma = L L^T as a raw array (B, D, D), for display and tests."""
        d = self.L.shape[-1]
        Lt = self.L.data * B.xp.tri(d, dtype=self.L.dtype)  # lower triangle only
        return Lt @ Lt.swapaxes(-1, -2)

    def sample(self, n_samples: int | None = None, eps=None) -> Tensor:
        """z = mu + L eps: shape (B, D), or (n_samples, B, D)."""
        if eps is None:
            eps = standard_normal(_sample_shape(n_samples, self.mu.shape), self.mu.dtype)
        return ops.reparameterize_full(self.mu, self.L, eps)

    def log_prob(self, z) -> Tensor:
        """log N(z | mu, L L^T): (..., B, D) -> (..., B)."""
        return ops.full_gaussian_log_prob(z, self.mu, self.L)

    def kl_to_standard(self) -> Tensor:
        """KL(self || N(0, I)) = 1/2 (tr Sigma + mu^T mu - D - log det Sigma) per example: (B,)."""
        return ops.kl_full_std(self.mu, self.L)


# ----------------------------------------------------------------------------- likelihoods


def _sum_data_axes(per_element: Tensor, x_ndim: int) -> Tensor:
    """Sum the data axes of x (all but its batch axis), keeping sample and batch axes."""
    axes = tuple(range(per_element.ndim - (x_ndim - 1), per_element.ndim))
    return per_element.sum(axis=axes) if axes else per_element


def bernoulli_log_likelihood(logits, x) -> Tensor:
    """log p(x | logits) = sum_i [x_i l_i - softplus(l_i)] per example.

    logits (B, D) or (L, B, D); x (B, D) in [0, 1] -> (B,) or (L, B).
    """
    x = as_tensor(x)
    if x.ndim == 2:  # the fused op: the same sum, in one pass (and in blocks when evaluating)
        return ops.bernoulli_log_likelihood(logits, x)
    return _sum_data_axes(ops.bernoulli_log_prob(logits, x), x.ndim)


def gaussian_log_likelihood(x, mean, log_var) -> Tensor:
    """log N(x | mean, e^log_var I), summed over data dimensions per example.

    x (B, D); mean (B, D) or (L, B, D); log_var broadcasts (a scalar for a shared
    sigma) -> (B,) or (L, B).
    """
    x = as_tensor(x)
    return _sum_data_axes(ops.gaussian_log_prob(x, mean, log_var), x.ndim)


def categorical_log_prob(logits, y) -> Tensor:
    """log softmax(logits)[y] per example: logits (B, C), integer labels y (B,) -> (B,)."""
    return -ops.cross_entropy(logits, y)


def log_mean_exp(a, axis=0) -> Tensor:
    """log (1/n) sum exp(a) along ``axis`` (stably, via logsumexp): the IWAE / IS average."""
    a = as_tensor(a)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    n = 1
    for ax in axes:
        n *= a.shape[ax]
    return ops.logsumexp(a, axis=axis) - math.log(n)


def standard_normal_log_prob(z) -> Tensor:
    """log N(z | 0, I), summed over the last axis: the prior p(z) of every model here."""
    z = as_tensor(z)
    return -0.5 * (z * z).sum(axis=-1) - 0.5 * z.shape[-1] * B.LOG_2PI


def total_correlation(z, q: DiagonalGaussian) -> Tensor:
    """TC = log q(z) - sum_d log q(z_d) at each z_i, for the batch's aggregate posterior: (B,).

    The aggregate posterior q(z) = E_x q(z|x) and its marginals q(z_d) are estimated on the
    batch itself (Chen et al. 2018, the minibatch estimator with the batch as the data):
        q(z_i) ~ 1/B sum_j q(z_i | x_j),     q(z_id) ~ 1/B sum_j q(z_id | x_j).
    Its mean over the batch estimates the total correlation KL(q(z) || prod_d q(z_d)), the
    term beta-TCVAE weights; it is 0 where the aggregate factorizes. z (B, D): one sample
    per example from q, whose mu and log_var are (B, D). While ``minivae.fast.enabled`` is
    on, the same formulas run as one op with a hand-written backward (``fast.TotalCorrelation``).
    """
    if fast.enabled and z.shape == q.mu.shape == q.log_var.shape:
        return fast.TotalCorrelation.apply(z, q.mu, q.log_var)
    b, d = z.shape
    pairs = ops.gaussian_log_prob(z.reshape(b, 1, d), q.mu.reshape(1, b, d),
                                  q.log_var.reshape(1, b, d))  # (B, B, D): log q(z_id | x_j)
    log_joint = ops.logsumexp(pairs.sum(axis=2), axis=1) - math.log(b)  # log q(z_i), (B,)
    log_marginals = (ops.logsumexp(pairs, axis=1) - math.log(b)).sum(axis=1)  # (B,)
    return log_joint - log_marginals
