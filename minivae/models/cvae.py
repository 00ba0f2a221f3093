"""The conditional VAE (Sohn et al. 2015; VAE Extensions slides, "Conditional VAE"): every network also sees y.

    q(z | x, y) = N(mu(x, y), diag sigma^2(x, y))     encoder input [x, c(y)] (B, x_dim + W)
    p(z)        = N(0, I)
    p(x | y, z)                                        decoder input [z, c(y)] (B, latent + W)

    log p(x | y) >= E_q(z|x,y)[log p(x | y, z)] - KL(q(z | x, y) || p(z)) = recon - kl

c(y) is the label's code, W numbers wide: the one-hot vector of a class (this file's
``ConditionalVAE``, W = C), or the label itself when it is real-valued (the continuous
model). ``LabelConditionedVAE`` writes the conditional bound once, for any code; M2 and
the continuous-label model reach it through their own classes, as
``conditional_elbo`` and ``conditional_log_importance_weights``.

Everything else (likelihoods, beta, samples, reductions as in ``minivae.distributions``)
is the VAE's; only the inputs of the two networks change.
"""

from __future__ import annotations

import numbers

from minivae import backend as B
from minivae import ops
from minivae.models.common import (
    as_input,
    check_labels,
    check_positive_int,
    config_size,
    grid_columns,
    model_dtype,
    one_hot,
)
from minivae.models.vae import VAE
from minivae.tensor import Tensor


class LabelConditionedVAE(VAE):
    """A VAE whose encoder and decoder take a code c(y) of the label concatenated to their input.

    Subclasses say how wide the code is (``label_code_width``, from the config: the
    networks' sizes follow from it), how labels are checked (``labels``) and coded
    (``label_code``). Every method that touches x or z takes the labels y as well.
    """

    # --- labels: what a subclass defines -----------------------------------------------
    def labels(self, y, batch: int | None = None):
        """y checked, in the form ``label_code`` reads, or a ValueError naming what is wrong."""
        raise NotImplementedError(f"{type(self).__name__} defines no labels()")  # pragma: no cover

    def label_code(self, y, dtype) -> Tensor:
        """c(y): a (B, W) Tensor for checked labels y."""
        raise NotImplementedError(f"{type(self).__name__} defines no label_code()")  # pragma: no cover

    # --- the conditional networks ----------------------------------------------------------
    def _check(self, x, y):
        x = as_input(self, x, self.x_dim)  # (B, x_dim)
        return x, self.labels(y, x.shape[0])

    def _encoder_input(self, x, y):
        return ops.concatenate([x, self.label_code(y, x.dtype)], axis=1)  # (B, x_dim + W)

    def _decoder_input(self, z, y):
        """z (N, latent) with N = S * B samples of a batch of B labels: [z, c(y)] (N, latent + W).

        Sample-major: row s * B + b holds sample s of example b, so c(y) is TILED S times
        (repeating each row S times instead would pair samples with the wrong labels).
        """
        y = self.labels(y)
        code = self.label_code(y, z.dtype)  # (B, W)
        batch = code.shape[0]
        reps = z.shape[0] // batch
        if reps * batch != z.shape[0]:
            raise ValueError(f"{type(self).__name__}: {z.shape[0]} codes for {batch} labels")
        if reps > 1:
            code = ops.concatenate([code] * reps, axis=0)  # (S * B, W)
        return ops.concatenate([z, code], axis=1)

    # --- the conditional bound, written once -------------------------------------------------
    def conditional_elbo(self, x, y, eps=None) -> dict:
        """{"recon", "kl", "elbo"} of the bound on log p(x | y): per-example Tensors (B,).

        eps fixes the noise: (B, latent), or (n_samples, B, latent).
        """
        return self._bound(x, y, eps)[0]

    def conditional_log_importance_weights(self, x, n_samples: int, y, eps=None) -> Tensor:
        """(K, B) log w_k = log p(x | y, z_k) + log p(z_k) - log q(z_k | x, y), z_k ~ q(z | x, y)."""
        return self._log_weights(x, y, n_samples, eps)

    def condition(self, batch):
        """Every density here is conditioned on the batch's labels."""
        return batch.y


class ConditionalVAE(LabelConditionedVAE):
    """A VAE whose encoder and decoder take a one-hot class label concatenated to their input.

    Arguments as ``VAE``, plus n_classes (C). Every method that touches x or z takes
    the integer labels y (B,) as well: ``elbo(x, y)``, ``encode(x, y)``, ``decode(z, y)``.
    Column c of the one-hot code means class c.
    """

    kind = "cvae"
    batch_kind = "labelled"

    def __init__(self, x_dim: int = 784, hidden=(400,), latent: int = 20, activation: str = "relu",
                 likelihood: str = "bernoulli", sigma: float | None = None,
                 learned_sigma: bool = False, beta: float = 1.0, n_samples: int = 1,
                 kl: str = "analytic", objective: str = "elbo", k: int = 5, n_classes: int = 10,
                 tc_beta: float = 1.0):
        self.n_classes = check_positive_int(type(self).__name__, "n_classes", n_classes)
        super().__init__(x_dim, hidden, latent, activation, likelihood, sigma, learned_sigma,
                         beta, n_samples, kl, objective, k, tc_beta)

    @property
    def config(self) -> dict:
        return {**super().config, "n_classes": self.n_classes}

    @classmethod
    def label_code_width(cls, c: dict) -> int:
        """W = C: the one-hot code of the class."""
        return config_size(c, "n_classes")

    @classmethod
    def dataset_labels(cls, ds, config: dict):
        """The data set's classes: (N,) integers."""
        return ds.labels

    # --- labels -----------------------------------------------------------------------
    def labels(self, y, batch: int | None = None):
        """y as a device array of ints in [0, C), or a ValueError naming the bad label."""
        if y is None:
            raise ValueError(f"{type(self).__name__}: needs labels y (integers in "
                             f"[0, {self.n_classes})), got None")
        return check_labels(type(self).__name__, y, self.n_classes, batch)

    def label_code(self, y, dtype) -> Tensor:
        """onehot(y): (B, C), column c set for class c."""
        return one_hot(y, self.n_classes, dtype)

    def elbo(self, x, y=None, eps=None) -> dict:
        """The bound on log p(x | y): {"recon", "kl", "elbo"}, per-example Tensors (B,)."""
        return self.conditional_elbo(x, y, eps)

    def log_importance_weights(self, x, n_samples: int, y=None, eps=None) -> Tensor:
        """(K, B) log-weights of log p(x | y); y is required."""
        return self.conditional_log_importance_weights(x, n_samples, y, eps)

    def sample(self, n: int, y=None):
        """n examples of the classes y (ints (n,) or one int); y=None cycles 0, 1, ..., C-1, 0, ..."""
        n = check_positive_int(type(self).__name__, "n", n)
        if y is None:
            y = B.xp.arange(n) % self.n_classes
        elif isinstance(y, numbers.Integral) and not isinstance(y, bool):
            y = B.xp.full(n, int(y))
        return super().sample(n, self.labels(y, n))

    def figure_samples(self, n: int, label=None):
        """label=None: one class per column and one z per row (a style shown in every class);
        label=c: n samples of class c."""
        n = check_positive_int(type(self).__name__, "n", n)
        if label is not None:
            return self.sample(n, label), f"{n} samples of class {label}", grid_columns(n, 8)
        cols = grid_columns(n, self.n_classes)
        rows = -(-n // cols)
        z = B.rng().standard_normal(size=(rows, self.latent), dtype=model_dtype(self))  # (R, latent)
        z = B.xp.repeat(z, cols, axis=0)[:n]  # (n, latent): row r's z in each of its columns
        y = B.xp.arange(n) % self.n_classes  # column c: class c
        images = self.decode(Tensor(z), self.labels(y, n))
        return images, "samples: column c is class c, each row one z ~ N(0, I)", cols
