"""A semi-supervised VAE for a continuous label (VAE Extensions slides; Kang & Cho 2019).

M2 (``minivae.models.m2``) with the class replaced by a real-valued property y in R^k:

    q(y | x)    = N(mu_y(x), diag sigma_y^2(x))        the regressor, x (B, x_dim) -> (B, 2k)
    q(z | x, y) = N(mu(x, y), diag sigma^2(x, y))      encoder input [x, y] (B, x_dim + k)
    p(x | y, z)                                        decoder input [z, y] (B, latent + k)
    p(z) = N(0, I),  p(y) = N(0, I)                    (standardize the property first)

Labelled bound, on log p(x, y) (VAE Extensions slides, "For data points with labels"):
    L(x, y) = E_q(z|x,y)[log p(x | y, z)] + log p(y) - KL(q(z | x, y) || p(z))
Unlabelled bound, on log p(x) (VAE Extensions slides, "For data points without labels"):
    U(x) = E_q(y|x)[L(x, y)] + H(q(y | x))
The expectation over y cannot be summed as M2 sums its C classes; it is estimated with
reparameterized samples  y = mu_y(x) + sigma_y(x) * eps_y,  eps_y ~ N(0, I),  so that the
gradient of U reaches the regressor through y (PGM Lecture 30's reparameterization trick,
applied to the label). One y per Monte-Carlo sample, one z per y:
    U(x) ~ 1/S sum_s L(x, y_s; z_s ~ q(z | x, y_s)) + H(q(y | x)),
    H(q(y | x)) = 1/2 sum_j (log 2 pi + 1 + log sigma_y,j^2)   (closed form).
The objective (maximised; the loss is its negative per example), the VAE Extensions
slides' J with the sign of a quantity to maximise:
    J = sum_labelled [L(x, y) - w ||y - E_q[y | x]||^2] + sum_unlabelled U(x),
with E_q[y | x] = mu_y(x) and w = ``regression_weight``, the weight the slides call beta
(renamed here because ``beta`` is the KL weight of every VAE in the family).

All terms are per-example sums over pixels, latent units and label dimensions
(``minivae.distributions``). In the dicts "kl" is everything the bound charges for the
latent variables: kl_z - log p(y) for labelled data, and kl_z - log p(y) - H(q(y|x)) for
unlabelled data (a one-sample estimate of kl_z + KL(q(y|x) || p(y))), so that
"elbo" = "recon" - "kl" holds for both bounds.
"""

from __future__ import annotations

import numbers

from minivae import backend as B
from minivae import ops
from minivae.data import slant_degrees
from minivae.distributions import DiagonalGaussian, standard_normal, standard_normal_log_prob
from minivae.models.common import (
    SemiSupervised,
    as_input,
    check_hidden,
    check_non_negative,
    check_positive_int,
    config_size,
    config_sizes,
    grid_columns,
    mean_over_samples,
    model_dtype,
    semi_supervised_loss,
    squared_error_mean,
)
from minivae.models.cvae import LabelConditionedVAE
from minivae.nn import MLP
from minivae.tensor import Tensor, as_tensor

SWEEP = 2.0  # sample figures sweep the label from -SWEEP to +SWEEP standard deviations


class ContinuousSemiSupervisedVAE(SemiSupervised, LabelConditionedVAE):
    """M2 for a real-valued label: a conditional VAE on [x, y] plus a regressor q(y | x).

    Arguments as ``VAE`` (one sample of z per sample of y; the objective is this model's
    own bound, so no "objective" or "k"), plus
    label_dim: k, the size of the label y (1 for a single property).
    regressor_hidden: the regressor's hidden sizes (None: the same as ``hidden``).
    regression_weight: w >= 0, the weight of ||y - mu_y(x)||^2 per labelled example
        (the VAE Extensions slides' beta). The label is assumed standardized
        (p(y) = N(0, I)), so the squared error is in units of the label's standard deviation.
    label_mean, label_std: how the raw property was standardized, y = (raw - label_mean)
        / label_std (the mean and standard deviation of the labelled examples' property);
        the training loop sets them from its labelled images. The model itself works in
        standardized units; these only translate (data hooks, figures, "label_mse").

    Labels are float arrays (B, k); for k = 1 a vector (B,) is accepted too. With a data
    set of images, the label the training loop gives it is the SLANT of each image in
    degrees (``minivae.data.slant_degrees``), standardized as above: a property computed
    from x, as Kang & Cho's molecular properties are (lesson 07).
    """

    kind = "ssvae-continuous"

    def __init__(self, x_dim: int = 784, hidden=(400,), latent: int = 20,
                 activation: str = "relu", likelihood: str = "bernoulli",
                 sigma: float | None = None, learned_sigma: bool = False, beta: float = 1.0,
                 n_samples: int = 1, kl: str = "analytic", label_dim: int = 1,
                 regressor_hidden=None, regression_weight: float = 10.0,
                 label_mean: float = 0.0, label_std: float = 1.0):
        name = type(self).__name__
        self.label_dim = check_positive_int(name, "label_dim", label_dim)
        self.label_mean = float(label_mean)
        self.label_std = check_non_negative(name, "label_std", label_std)
        if not self.label_std > 0:
            raise ValueError(f"{name}: label_std must be > 0, got {label_std!r}")
        super().__init__(x_dim, hidden, latent, activation, likelihood, sigma, learned_sigma,
                         beta, n_samples, kl, "elbo", 1)
        self.regressor_hidden = (self.hidden if regressor_hidden is None
                                 else check_hidden(name, regressor_hidden))
        self.regression_weight = check_non_negative(name, "regression_weight", regression_weight)
        # x -> (mu_y, log sigma_y^2), (B, 2k)
        self.regressor = MLP(self.layer_sizes(vars(self))["regressor"], activation)

    @classmethod
    def label_code_width(cls, c: dict) -> int:
        """W = k: the code of y is y itself."""
        return config_size(c, "label_dim")

    @classmethod
    def layer_sizes(cls, c: dict) -> dict:
        """The conditional networks, plus the regressor x -> ... -> (mu_y, log sigma_y^2)."""
        sizes = super().layer_sizes(c)
        own = c.get("regressor_hidden") is not None
        inner = config_sizes(c, "regressor_hidden" if own else "hidden")
        sizes["regressor"] = [config_size(c, "x_dim"), *inner, 2 * config_size(c, "label_dim")]
        return sizes

    @property
    def config(self) -> dict:
        config = super().config
        for unused in ("objective", "k", "tc_beta"):  # trains on its own bound only
            config.pop(unused)
        config.update({
            "kind": self.kind, "label_dim": self.label_dim,
            "regressor_hidden": list(self.regressor_hidden),
            "regression_weight": self.regression_weight,
            "label_mean": self.label_mean, "label_std": self.label_std,
        })  # fmt: skip
        return config

    # --- the data hooks of the training loop -------------------------------------------------
    DATA_CONFIG_KEYS = ("label_mean", "label_std")

    @classmethod
    def data_config(cls, train, labelled) -> dict:
        """label_mean and label_std: the labelled images' slant (degrees), to standardize y."""
        raw = slant_degrees(train.images[labelled], train.image_shape)  # (N_l,)
        std = float(raw.std())
        return {"label_mean": float(raw.mean()), "label_std": std if std > 0 else 1.0}

    @classmethod
    def dataset_labels(cls, ds, config: dict):
        """y = (slant - label_mean) / label_std of every image: host (N, 1) floats."""
        if config.get("label_dim", 1) != 1:
            raise ValueError(f"{cls.__name__}: the label a data set gives is one property, the "
                             f"slant; label_dim must be 1, got {config['label_dim']}")  # fmt: skip
        raw = slant_degrees(ds.images, ds.image_shape)  # (N,) degrees
        y = (raw - config.get("label_mean", 0.0)) / config.get("label_std", 1.0)
        return y.reshape(-1, 1)

    # --- labels -----------------------------------------------------------------------
    def labels(self, y, batch: int | None = None) -> Tensor:
        """y as a (B, k) Tensor of the model's dtype, or a ValueError naming both shapes.

        A Tensor that carries a gradient (a reparameterized sample) passes through
        unchanged, so the graph from the regressor stays intact.
        """
        name, k = type(self).__name__, self.label_dim
        if y is None:
            raise ValueError(f"{name}: needs labels y of shape (batch, {k}), got None")
        keep = isinstance(y, Tensor) and y.requires_grad  # a sample with a gradient: keep it
        data = y.data if isinstance(y, Tensor) else B.xp.asarray(y)
        shape = tuple(data.shape)
        if not keep:
            if data.dtype.kind not in "fiu":
                raise ValueError(f"{name}: labels must be real numbers, got dtype {data.dtype}")
            if k == 1 and data.ndim == 1:  # a vector of one property
                data = data.reshape(-1, 1)
        rows = batch if batch is not None else "batch"
        if data.ndim != 2 or data.shape[1] != k or (batch is not None and data.shape[0] != batch):
            allowed = f"({rows}, {k})" + (f" or ({rows},)" if k == 1 else "")
            inputs = f" for {batch} inputs" if batch is not None else ""
            raise ValueError(f"{name}: labels of shape {shape} do not fit: expected {allowed}"
                             f"{inputs} (label_dim={k})")  # fmt: skip
        if keep:
            return y
        if data.size and not bool(B.xp.isfinite(data).all()):
            raise ValueError(f"{name}: labels must be finite, got NaN or inf in a label of "
                             f"shape {shape}")  # fmt: skip
        return Tensor(data.astype(model_dtype(self)))

    def label_code(self, y, dtype) -> Tensor:
        """c(y) = y itself: the checked (B, k) Tensor."""
        return y

    # --- the regressor -------------------------------------------------------------------
    def label_posterior(self, x) -> DiagonalGaussian:
        """q(y | x): a DiagonalGaussian with mu_y, log sigma_y^2 of shape (B, k)."""
        h = self.regressor(as_input(self, x, self.x_dim))  # (B, 2k)
        k = self.label_dim
        return DiagonalGaussian(h[:, :k], h[:, k:])

    def predict(self, x) -> Tensor:
        """E_q[y | x] = mu_y(x): a Tensor (B, k), the model's estimate of the label."""
        return self.label_posterior(x).mu

    def label_error(self, x, y) -> dict:
        """{"label_mse": mean ||y - E_q[y|x]||^2 in the raw property's units squared}."""
        y = self.labels(y, as_input(self, x, self.x_dim).shape[0])  # (B, k), standardized
        mse = squared_error_mean(self.predict(x).data, y.data)
        return {"label_mse": mse * self.label_std**2}

    def _labels_or_predicted(self, x, y):
        return self.predict(x).detach() if y is None else y

    def encode(self, x, y=None):
        """(mu, log_var) of q(z | x, y); y=None uses the regressor's mean mu_y(x)."""
        return super().encode(x, self._labels_or_predicted(x, y))

    def reconstruct(self, x, y=None):
        return super().reconstruct(x, self._labels_or_predicted(x, y))

    def sample(self, n: int, y=None) -> Tensor:
        """n examples with labels y ((n, k), (n,) for k = 1, or one number for all);
        y=None draws the labels from the prior p(y) = N(0, I) as well."""
        n = check_positive_int(type(self).__name__, "n", n)
        if y is None:
            y = standard_normal((n, self.label_dim), model_dtype(self))
        elif isinstance(y, numbers.Real) and not isinstance(y, bool):
            y = B.xp.full((n, self.label_dim), float(y), dtype=model_dtype(self))
        return super().sample(n, self.labels(y, n))

    def figure_samples(self, n: int, label=None):
        """label=None: the label swept over the columns from -2 to +2 standard deviations, one
        z per row; label=v: n samples of the raw property value v (degrees of slant)."""
        n = check_positive_int(type(self).__name__, "n", n)
        dtype = model_dtype(self)
        if label is not None:
            y = (float(label) - self.label_mean) / self.label_std
            return self.sample(n, y), f"{n} samples with the label {label:g}", grid_columns(n, 8)
        cols = grid_columns(n, 9)
        rows = -(-n // cols)
        z = B.xp.repeat(standard_normal((rows, self.latent), dtype), cols, axis=0)[:n]  # (n, latent)
        sweep = B.xp.linspace(-SWEEP, SWEEP, cols).astype(dtype)  # (cols,) standardized
        y = B.xp.tile(sweep, rows)[:n].reshape(n, 1)  # column c: the c-th value of the sweep
        images = self.decode(Tensor(z), self.labels(y, n))
        low, high = (self.label_mean + v * self.label_std for v in (-SWEEP, SWEEP))
        caption = (f"samples: the label from {low:.3g} to {high:.3g} (-{SWEEP:g} to +{SWEEP:g} "
                   "standard deviations) across the columns, each row one z ~ N(0, I)")
        return images, caption, cols

    # --- the bounds -------------------------------------------------------------------------
    def log_prior_y(self, y) -> Tensor:
        """log p(y) = log N(y | 0, I), summed over the k label dimensions: (..., B)."""
        return standard_normal_log_prob(y)

    def elbo(self, x, y=None, eps=None, eps_y=None) -> dict:
        """L(x, y) when y is given, U(x) otherwise: per-example Tensors (B,).

        Keys: "recon", "kl_z" (KL of q(z|x,y)), "log_prior_y" (log p(y), for U its
        sample mean), "kl" (see the module docstring), "elbo" = recon - kl; U adds
        "entropy" H(q(y|x)).
        eps fixes the noise of z, (B, latent) or (S, B, latent); eps_y (U only) the
        noise of y, (B, k) or (S, B, k), with S samples (S = n_samples when drawn).
        """
        if y is None:
            return self._unlabelled(x, eps, eps_y)["terms"]
        if eps_y is not None:
            raise ValueError(f"{type(self).__name__}: eps_y is the noise of q(y|x); "
                             "with y given there is no y to sample")  # fmt: skip
        x, y = self._check(x, y)
        terms = self.conditional_elbo(x, y, eps)  # recon, kl of z
        log_p_y = self.log_prior_y(y)  # (B,)
        kl = terms["kl"] - log_p_y
        return {"recon": terms["recon"], "kl_z": terms["kl"], "log_prior_y": log_p_y,
                "kl": kl, "elbo": terms["recon"] - kl}  # fmt: skip

    def _noise(self, eps, n: int, dim: int, what: str):
        """eps as a raw array (S, n, dim); drawn with S = n_samples when None."""
        if eps is None:
            return standard_normal((self.n_samples, n, dim), model_dtype(self))
        eps = B.xp.asarray(eps.data if isinstance(eps, Tensor) else eps)
        shape = tuple(eps.shape)
        if eps.ndim == 2:
            eps = eps[None]
        if eps.ndim != 3 or eps.shape[1:] != (n, dim):
            raise ValueError(f"{type(self).__name__}: {what} of shape {shape}, "
                             f"expected ({n}, {dim}) or (samples, {n}, {dim})")  # fmt: skip
        return eps

    def _unlabelled(self, x, eps=None, eps_y=None, kl_scale: float = 1.0) -> dict:
        """U(x) (the true bound, in "terms") and the objective with the z-KL scaled by kl_scale."""
        x = as_input(self, x, self.x_dim)  # (B, x_dim)
        n, k = x.shape[0], self.label_dim
        q_y = self.label_posterior(x)  # (B, k) each
        eps_y = self._noise(eps_y, n, k, "eps_y")  # (S, B, k)
        s = eps_y.shape[0]
        eps_z = self._noise(eps, n, self.latent, "eps")  # (S, B, latent)
        if eps_z.shape[0] != s:
            raise ValueError(f"{type(self).__name__}: {eps_z.shape[0]} samples of eps for "
                             f"{s} samples of eps_y: one z per sampled y")  # fmt: skip
        y = q_y.sample(eps=eps_y)  # y = mu_y + sigma_y eps_y, reparameterized: (S, B, k)
        y_flat = y.reshape(s * n, k)  # (S * B, k), row s * B + b
        x_rep = ops.concatenate([x] * s, axis=0) if s > 1 else x  # (S * B, x_dim)
        lab = self.conditional_elbo(x_rep, y_flat, eps_z.reshape(s * n, self.latent))  # (S * B,)
        recon = mean_over_samples(lab["recon"].reshape(s, n))  # E_q(y|x) E_q(z|x,y) log p(x|y,z)
        kl_z = mean_over_samples(lab["kl"].reshape(s, n))  # E_q(y|x) KL(q(z|x,y) || p(z)), (B,)
        log_p_y = mean_over_samples(self.log_prior_y(y))  # E_q(y|x) log p(y), (B,)
        entropy = q_y.entropy()  # H(q(y|x)), closed form, (B,)
        kl = kl_z - log_p_y - entropy
        objective = recon - kl_scale * kl_z + log_p_y + entropy
        terms = {"recon": recon, "kl_z": kl_z, "log_prior_y": log_p_y, "kl": kl,
                 "elbo": recon - kl, "entropy": entropy}  # fmt: skip
        return {"terms": terms, "objective": objective}

    def log_importance_weights(self, x, n_samples: int, y=None, eps=None, eps_y=None):
        """(K, B) log-weights for log p(x, y) (y given) or log p(x) (y sampled too).

        Without y each weight samples the pair y_k ~ q(y | x), z_k ~ q(z | x, y_k):
            log w_k = log p(x | y_k, z_k) + log p(y_k) + log p(z_k)
                      - log q(y_k | x) - log q(z_k | x, y_k).
        """
        n_samples = check_positive_int(type(self).__name__, "n_samples", n_samples)
        if y is not None:
            y = self.labels(y, as_tensor(x).shape[0])  # (B, k)
            log_w = self.conditional_log_importance_weights(x, n_samples, y, eps)  # (K, B)
            return log_w + self.log_prior_y(y)
        x = as_input(self, x, self.x_dim)
        n, k = x.shape[0], self.label_dim
        q_y = self.label_posterior(x)
        if eps_y is None:
            eps_y = standard_normal((n_samples, n, k), model_dtype(self))
        y = q_y.sample(eps=eps_y)  # (K, B, k)
        log_y = self.log_prior_y(y) - q_y.log_prob(y)  # (K, B)
        x_rep = ops.concatenate([x] * n_samples, axis=0) if n_samples > 1 else x  # (K * B, x_dim)
        if eps is not None:
            eps = B.xp.asarray(eps.data if isinstance(eps, Tensor) else eps)
            eps = eps.reshape(1, n_samples * n, self.latent)  # one z per sampled y
        log_z = self.conditional_log_importance_weights(x_rep, 1, y.reshape(n_samples * n, k), eps)
        return log_z.reshape(n_samples, n) + log_y  # (K, B)

    # --- the objective ----------------------------------------------------------------------
    def condition(self, batch):
        """log p(x) integrates y out: the densities of the model need no label."""
        return

    def _loss_parts(self, x_unlabelled=None, x_labelled=None, y_labelled=None,
                    kl_weight: float = 1.0, eps_labelled=None, eps_unlabelled=None, eps_y=None):
        """(-J / (B_u + B_l), stats): the objective per example; either part may be None.

        ``loss(batch, kl_weight, eps_labelled=..., ...)`` calls it with the Batch's x,
        x_labelled and y_labelled.

        eps_labelled fixes the noise of z for the labelled part, eps_unlabelled and eps_y
        the noise of z and y for the unlabelled part (shapes as in ``elbo``); when drawn,
        the labelled part draws first.
        stats (nats per example): "elbo", "recon", "kl" over all examples of the batch
        (true bounds, beta = 1), "loss", "labelled_elbo", "unlabelled_elbo",
        "regression_loss" (mean ||y - mu_y(x)||^2 over the labelled examples),
        "regression_weight", and "entropy_y" (mean H(q(y|x)) over the unlabelled ones).
        """
        name = type(self).__name__
        kl_weight = check_non_negative(name, "kl_weight", kl_weight)
        kl_scale = self.beta * kl_weight
        objective, bounds, stats = [], [], {}
        if x_labelled is not None:
            if y_labelled is None:
                raise ValueError(f"{name}: x_labelled was given without y_labelled")
            x_l, y_l = self._check(x_labelled, y_labelled)  # (B_l, x_dim), (B_l, k)
            lab = self.elbo(x_l, y_l, eps_labelled)  # each (B_l,)
            diff = y_l - self.label_posterior(x_l).mu  # y - E_q[y|x], (B_l, k)
            sq_error = (diff * diff).sum(axis=1)  # ||y - E_q[y|x]||^2, (B_l,)
            w = self.regression_weight
            obj_l = lab["recon"] - kl_scale * lab["kl_z"] + lab["log_prior_y"] - w * sq_error
            objective.append(obj_l.sum())
            bounds.append(lab)
            stats["labelled_elbo"] = lab["elbo"]
            stats["regression_loss"] = sq_error
            stats["regression_weight"] = w
        if x_unlabelled is not None:
            un = self._unlabelled(x_unlabelled, eps_unlabelled, eps_y, kl_scale)
            objective.append(un["objective"].sum())
            bounds.append(un["terms"])
            stats["unlabelled_elbo"] = un["terms"]["elbo"]
            stats["entropy_y"] = un["terms"]["entropy"]
        return semi_supervised_loss(name, objective, bounds, stats)
