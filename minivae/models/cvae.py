"""The conditional VAE (Sohn et al. 2015; seed 004, "Conditional VAE"): every network also sees y.

    q(z | x, y) = N(mu(x, y), diag sigma^2(x, y))     encoder input [x, onehot(y)] (B, x_dim + C)
    p(z)        = N(0, I)
    p(x | y, z)                                        decoder input [z, onehot(y)] (B, latent + C)

    log p(x | y) >= E_q(z|x,y)[log p(x | y, z)] - KL(q(z | x, y) || p(z)) = recon - kl

Everything else (likelihoods, beta, samples, reductions as in ``minivae.distributions``)
is the VAE's; only the inputs of the two networks change.
"""

from __future__ import annotations

import numbers

from minivae import backend as B
from minivae import ops
from minivae.models.autoencoder import as_input, check_labels, check_positive_int, one_hot
from minivae.models.vae import VAE
from minivae.tensor import Tensor


class ConditionalVAE(VAE):
    """A VAE whose encoder and decoder take a one-hot label concatenated to their input.

    Arguments as ``VAE``, plus n_classes (C). Every method that touches x or z takes
    the integer labels y (B,) as well: ``elbo(x, y)``, ``encode(x, y)``, ``decode(z, y)``.
    """

    kind = "cvae"

    def __init__(self, x_dim: int = 784, hidden=(400,), latent: int = 20, activation: str = "relu",
                 likelihood: str = "bernoulli", sigma: float | None = None,
                 learned_sigma: bool = False, beta: float = 1.0, n_samples: int = 1,
                 kl: str = "analytic", objective: str = "elbo", k: int = 5, n_classes: int = 10,
                 tc_beta: float = 1.0):
        self.n_classes = check_positive_int(type(self).__name__, "n_classes", n_classes)
        super().__init__(x_dim, hidden, latent, activation, likelihood, sigma, learned_sigma,
                         beta, n_samples, kl, objective, k, tc_beta)

    def _build(self, activation: str, x_extra: int = 0, z_extra: int = 0):
        super()._build(activation, x_extra + self.n_classes, z_extra + self.n_classes)

    @property
    def config(self) -> dict:
        return {**super().config, "n_classes": self.n_classes}

    # --- labels -----------------------------------------------------------------------
    def labels(self, y, batch: int | None = None):
        """y as a device array of ints in [0, C), or a ValueError naming the bad label."""
        if y is None:
            raise ValueError(f"{type(self).__name__}: needs labels y (integers in "
                             f"[0, {self.n_classes})), got None")
        return check_labels(type(self).__name__, y, self.n_classes, batch)

    def _check(self, x, y):
        x = as_input(self, x, self.x_dim)  # (B, x_dim)
        return x, self.labels(y, x.shape[0])  # (B,)

    def _encoder_input(self, x, y):
        return ops.concatenate([x, one_hot(y, self.n_classes, x.dtype)], axis=1)  # (B, x_dim + C)

    def _decoder_input(self, z, y):
        """z (N, latent) with N = S * B samples of a batch of B labels: [z, onehot(y)] (N, latent + C)."""
        y = self.labels(y)
        reps = z.shape[0] // y.shape[0]
        if reps * y.shape[0] != z.shape[0]:
            raise ValueError(f"{type(self).__name__}: {z.shape[0]} codes for {y.shape[0]} labels")
        hot = one_hot(y, self.n_classes, z.dtype)  # (B, C)
        if reps > 1:  # sample-major: row s * B + b holds sample s of example b
            hot = Tensor(B.xp.tile(hot.data, (reps, 1)))  # (S * B, C)
        return ops.concatenate([z, hot], axis=1)

    def sample(self, n: int, y=None):
        """n examples of the classes y (ints (n,) or one int); y=None cycles 0, 1, ..., C-1, 0, ..."""
        n = check_positive_int(type(self).__name__, "n", n)
        if y is None:
            y = B.xp.arange(n) % self.n_classes
        elif isinstance(y, numbers.Integral) and not isinstance(y, bool):
            y = B.xp.full(n, int(y))
        return super().sample(n, self.labels(y, n))
