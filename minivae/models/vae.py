"""The variational autoencoder (Kingma & Welling 2013), and beta-VAE as its beta argument.

    q(z | x) = N(mu(x), diag sigma^2(x))      encoder: x (B, x_dim) -> mu, log sigma^2 (B, latent)
             or N(mu(x), L(x) L(x)^T)         covariance="full": mu and a Cholesky factor L
    p(z)     = N(0, I)
    p(x | z) = Bernoulli(sigmoid(g(z)))  or  N(g(z), sigma_x^2 I)     decoder: z -> (B, x_dim)

    ELBO(x) = E_q(z|x)[log p(x | z)] - KL(q(z | x) || p(z))
              (PGM Lecture 30; Computational Intelligence Lab, Series 9; Understanding
               Deep Learning, ch. 17)
            = recon - kl,  recon by Monte Carlo over n_samples reparameterized z = mu + sigma eps

With covariance="full" the encoder outputs, besides mu, the latent (latent + 1) / 2
entries of a lower-triangular L with positive diagonal (``ops.cholesky_factor``): the
sampler is z = mu + L eps (the blog post 'Variational Autoencoders' (2018); Computational
Intelligence Lab, Series 9, Problems 2.3-2.4 on its O(D^2) outputs; Understanding Deep Learning,
eq. 17.25, with L as the square root of Sigma), the KL is KL(N(mu, L L^T) || N(0, I)) in
closed form, and the importance weights use the full log-density.

Reductions follow ``minivae.distributions``: log-likelihoods and KLs are sums over
pixels and latent units per example, samples are averaged, the batch is averaged;
every number is in nats per example.
"""

from __future__ import annotations

import math

from minivae import backend as B
from minivae import ops
from minivae.distributions import (
    DiagonalGaussian,
    FullGaussian,
    bernoulli_log_likelihood,
    gaussian_log_likelihood,
    log_mean_exp,
    standard_normal_log_prob,
    total_correlation,
)
from minivae.models.common import (
    Model,
    as_input,
    check_batch,
    check_choice,
    check_hidden,
    check_non_negative,
    check_positive,
    check_positive_int,
    config_size,
    config_sizes,
    flatten_samples,
    mean_over_samples,
    model_dtype,
    restore_samples,
    scalar_stats,
)
from minivae.nn import INITS, MLP
from minivae.tensor import Tensor


class VAE(Model):
    """A VAE with MLP encoder and decoder; beta > 1 gives the beta-VAE (Higgins et al. 2017).

    x_dim, hidden, latent, activation: the MLPs are x_dim -> hidden... -> 2 latent
        (mu and log sigma^2) and latent -> reversed(hidden)... -> x_dim;
        ``hidden=()`` means no hidden layer: linear encoder and decoder (the linear
        VAE, which recovers probabilistic PCA).
    likelihood: "bernoulli" (decoder outputs logits; pixels in [0, 1]) or "gaussian".
    sigma: the decoder's fixed standard deviation sigma_x for "gaussian" (None means 1).
        PGM Lecture 30's cost  alpha ||x - g(z)||^2 + KL  is the negative ELBO with this
        Gaussian decoder, because
            -log N(x | g(z), sigma_x^2 I) = ||x - g(z)||^2 / (2 sigma_x^2) + (D/2) log(2 pi sigma_x^2),
        so alpha = 1 / (2 sigma_x^2), i.e. sigma_x = 1 / sqrt(2 alpha): a large alpha is
        a decoder that claims little noise, and the KL weighs less against the fit.
    learned_sigma: learn one shared log sigma_x^2 (True: a parameter of shape (1,), initialised
        from sigma), or "per_unit": one log sigma_d^2 per data dimension, shape (x_dim,), so
        that a dimension with more spread weighs less in the fit (Kingma et al. 2014's M2 on
        M1's codes has a variance per unit).
    beta: weight of the KL in the loss (loss = -(recon - beta * kl)); "elbo" stays the true bound.
    n_samples: Monte-Carlo samples of z per example for the reconstruction term.
    kl: "analytic" (closed form, Computational Intelligence Lab, Series 9, Problem 1.7) or
        "mc" (log q(z|x) - log p(z) at the same samples: noisier, but exactly log p(x) per
        sample when q is the posterior).
    objective: "elbo", or "iwae" (Burda et al. 2015: loss = -log mean_k w_k with k samples).
    tc_beta: the beta of beta-TCVAE (Chen et al. 2018). The KL term of the ELBO splits into
        the index-code mutual information, the total correlation TC of the aggregate
        posterior q(z) = E_x q(z|x), and the KLs of its marginals; the loss adds
        (tc_beta - 1) TC, so that only the TC is weighted tc_beta (1: no extra term). TC is
        estimated on the batch (``minivae.distributions.total_correlation``).
    covariance: "diagonal" (q = N(mu, diag sigma^2), 2 latent encoder outputs) or "full"
        (q = N(mu, L L^T), latent + latent (latent + 1) / 2 outputs: mu; then v_d = log L_dd^2,
        the log of each unit's variance given the units before it, read as L_dd = e^(v_d / 2)
        like a log-variance; then the entries below the diagonal of L, row by row). With the
        entries below the diagonal at 0 it is the diagonal VAE with log sigma^2 = v, and that
        is where it starts: their weights are initialised to 0.
    init: the Linear layers' initialisation: None (He for relu nets, else Xavier), "he",
        "xavier", or "uniform" (PyTorch's default, U(+-1/sqrt(n_in)) for weights and biases).
    capacity: None, or C > 0 nats: the beta-VAE with a controlled capacity (Burgess et al.
        2018, "Understanding disentangling in beta-VAE", eq. 8). The loss becomes
        -recon + beta |KL - c| with the batch's mean recon and KL, so that beta (their gamma,
        large) holds the rate near a target c instead of pushing it to 0, and c = kl_weight C
        grows with the training loop's KL warm-up (``kl_warmup_epochs``) from 0 to C. The
        paper's argument: a code that gains capacity slowly gives its first units to the
        factors that explain the most pixels, one unit each (benchmarks/BENCHMARKS.md has
        what it did on the built-in shapes).
    """

    kind = "vae"
    LIKELIHOODS = ("bernoulli", "gaussian")
    COVARIANCES = ("diagonal", "full")

    def __init__(self, x_dim: int = 784, hidden=(400,), latent: int = 20, activation: str = "relu",
                 likelihood: str = "bernoulli", sigma: float | None = None,
                 learned_sigma: bool = False, beta: float = 1.0, n_samples: int = 1,
                 kl: str = "analytic", objective: str = "elbo", k: int = 5, tc_beta: float = 1.0,
                 covariance: str = "diagonal", init: str | None = None,
                 capacity: float | None = None):
        name = type(self).__name__
        self.x_dim = check_positive_int(name, "x_dim", x_dim)
        self.hidden = check_hidden(name, hidden)
        self.latent = check_positive_int(name, "latent", latent)
        self.activation = activation
        self.likelihood = check_choice(name, "likelihood", likelihood, self.LIKELIHOODS)
        if sigma is not None:
            if self.likelihood != "gaussian":
                raise ValueError(f"{name}: sigma={sigma!r} only applies to likelihood='gaussian'")
            sigma = check_positive(name, "sigma", sigma)
        check_choice(name, "learned_sigma", learned_sigma, (False, True, "per_unit"))
        if learned_sigma and self.likelihood != "gaussian":
            raise ValueError(f"{name}: learned_sigma={learned_sigma!r} only applies to "
                             "likelihood='gaussian'")  # fmt: skip
        self.sigma = sigma
        self.learned_sigma = "per_unit" if learned_sigma == "per_unit" else bool(learned_sigma)
        self.beta = check_non_negative(name, "beta", beta)
        self.n_samples = check_positive_int(name, "n_samples", n_samples)
        self.kl = check_choice(name, "kl", kl, ("analytic", "mc"))
        self.objective = check_choice(name, "objective", objective, ("elbo", "iwae"))
        self.k = check_positive_int(name, "k", k)
        self.tc_beta = check_non_negative(name, "tc_beta", tc_beta)
        if self.tc_beta != 1.0 and self.objective != "elbo":
            raise ValueError(f"{name}: tc_beta={tc_beta!r} needs objective='elbo', got {objective!r}")
        self.covariance = check_choice(name, "covariance", covariance, self.COVARIANCES)
        if self.tc_beta != 1.0 and self.covariance != "diagonal":
            raise ValueError(f"{name}: tc_beta={tc_beta!r} needs covariance='diagonal' (the total "
                             "correlation estimate reads a diagonal q), got 'full'")  # fmt: skip
        if init is not None:
            check_choice(name, "init", init, INITS)
        self.init = init
        if capacity is not None:
            capacity = check_positive(name, "capacity (nats)", capacity)
            if self.objective != "elbo" or self.tc_beta != 1.0:
                raise ValueError(f"{name}: capacity={capacity!r} needs objective='elbo' and "
                                 f"tc_beta=1, got {objective!r} and {tc_beta!r}")  # fmt: skip
        self.capacity = capacity
        self._build(activation)

    def _build(self, activation: str):
        """The networks of ``layer_sizes``: x (+ c(y)) -> q's parameters, z (+ c(y)) -> x."""
        sizes = self.layer_sizes(vars(self))
        self.encoder = MLP(sizes["encoder"], activation, init=self.init)
        self.decoder = MLP(sizes["decoder"], activation, init=self.init)
        if self.covariance == "full":
            # the entries below L's diagonal start at 0, so q starts diagonal, as in the diagonal
            # VAE: random ones would start every unit with a variance of about D (a KL of
            # hundreds of nats) and the training would first have to undo it
            self.encoder[-1].weight.data[:, 2 * self.latent :] = 0.0
        if self.likelihood == "gaussian":
            log_var = 2.0 * math.log(self.sigma if self.sigma is not None else 1.0)
            if self.learned_sigma:  # log sigma_x^2, a parameter: one shared, or one per unit
                shape = self.extra_parameter_shapes(vars(self))["decoder_log_var"]
                self.decoder_log_var = Tensor(
                    B.xp.full(shape, log_var, dtype=B.get_default_dtype()), requires_grad=True
                )
            else:
                self.decoder_log_var = log_var  # a constant number

    # --- the networks' sizes: one rule for the constructor and the checkpoint reader ---
    @classmethod
    def label_code_width(cls, c: dict) -> int:
        """W, the width of the label's code c(y) that both networks see besides x and z: none."""
        return 0

    @classmethod
    def layer_sizes(cls, c: dict) -> dict:
        """encoder [x, c(y)] -> hidden... -> q's parameters; decoder [z, c(y)] -> ... -> x."""
        x_dim, latent = config_size(c, "x_dim"), config_size(c, "latent")
        hidden = config_sizes(c, "hidden")
        w = cls.label_code_width(c)
        return {"encoder": [x_dim + w, *hidden, cls.posterior_width(c)],
                "decoder": [latent + w, *reversed(hidden), x_dim]}  # fmt: skip

    @classmethod
    def extra_parameter_shapes(cls, c: dict) -> dict:
        """A learned Gaussian decoder's log sigma_x^2: one shared (1,), or one per unit (x_dim,)."""
        learned = c.get("learned_sigma")
        if c.get("likelihood") != "gaussian" or not learned:
            return {}
        return {"decoder_log_var": (config_size(c, "x_dim"),) if learned == "per_unit" else (1,)}

    @classmethod
    def posterior_width(cls, c: dict) -> int:
        """The encoder's outputs: mu and log sigma^2 (2 D), or mu and L's D (D + 1) / 2 entries."""
        d = config_size(c, "latent")
        return 2 * d if c.get("covariance", "diagonal") == "diagonal" else d + d * (d + 1) // 2

    @property
    def config(self) -> dict:
        config = self._config()
        if "covariance" in self.arguments():  # the subclasses that take no covariance keep none
            config["covariance"] = self.covariance
        if "init" in self.arguments():  # a checkpoint written before it existed: None
            config["init"] = self.init
        if "capacity" in self.arguments():
            config["capacity"] = self.capacity
        return config

    def _config(self) -> dict:
        return {"kind": self.kind, "x_dim": self.x_dim, "hidden": list(self.hidden),
                "latent": self.latent, "activation": self.activation,
                "likelihood": self.likelihood, "sigma": self.sigma,
                "learned_sigma": self.learned_sigma, "beta": self.beta,
                "n_samples": self.n_samples, "kl": self.kl, "objective": self.objective,
                "k": self.k, "tc_beta": self.tc_beta}  # fmt: skip

    # --- hooks the conditional models override: what the networks see besides x and z ---
    def _encoder_input(self, x: Tensor, y) -> Tensor:
        return x  # (B, x_dim)

    def _decoder_input(self, z: Tensor, y) -> Tensor:
        return z  # (N, latent)

    def _check(self, x, y):
        """x as a (B, x_dim) Tensor, y as the model needs it (the VAE ignores y)."""
        return as_input(self, x, self.x_dim), None

    # --- encoder and decoder -------------------------------------------------------
    def posterior(self, x, y=None) -> DiagonalGaussian | FullGaussian:
        """q(z | x): a DiagonalGaussian with mu, log sigma^2 of shape (B, latent), or with
        covariance="full" a FullGaussian with mu (B, latent) and L (B, latent, latent)."""
        x, y = self._check(x, y)
        h = self.encoder(self._encoder_input(x, y))  # (B, posterior_width)
        d = self.latent
        if self.covariance == "diagonal":
            return DiagonalGaussian(h[:, :d], h[:, d:])
        # L_dd = exp(v_d / 2), the same reading as sigma = exp(log sigma^2 / 2)
        log_diag = 0.5 * h[:, d : 2 * d]  # (B, latent), log L_dd
        return FullGaussian.from_unconstrained(h[:, :d], log_diag, h[:, 2 * d :])

    def encode(self, x, y=None):
        """(mu, log_var) of q(z | x), each (B, latent).

        With covariance="full", log_var is the log of the marginal variances Sigma_dd =
        sum_j L_dj^2 (the diagonal of L L^T); the correlations are in ``posterior(x).L``.
        """
        q = self.posterior(x, y)
        if self.covariance == "diagonal":
            return q.mu, q.log_var
        return q.mu, ops.log((q.L * q.L).sum(axis=-1))  # (B, latent)

    def decode_logits(self, z, y=None) -> Tensor:
        """The decoder's output: logits (Bernoulli) or means (Gaussian), (..., latent) -> (..., x_dim)."""
        flat, lead = flatten_samples(z if isinstance(z, Tensor) else Tensor(z))  # (N, latent)
        out = self.decoder(self._decoder_input(flat, y))  # (N, x_dim)
        return restore_samples(out, lead)  # (..., x_dim)

    def decode(self, z, y=None) -> Tensor:
        """Means in data space: Bernoulli probabilities sigmoid(logits), or Gaussian means."""
        out = self.decode_logits(z, y)
        return ops.sigmoid(out) if self.likelihood == "bernoulli" else out

    def reconstruct(self, x, y=None) -> Tensor:
        """decode(mu(x)): the mean reconstruction, no sampling."""
        q = self.posterior(x, y)
        return self.decode(q.mu, y)

    def sample(self, n: int, y=None) -> Tensor:
        """n new examples: decode z ~ N(0, I) (B = n, x_dim), data-space means."""
        n = check_positive_int(type(self).__name__, "n", n)
        z = Tensor(B.rng().standard_normal(size=(n, self.latent), dtype=model_dtype(self)))
        return self.decode(z, y)

    # --- densities ----------------------------------------------------------------------
    def log_likelihood(self, x: Tensor, z: Tensor, y=None) -> Tensor:
        """log p(x | z) summed over pixels: z (..., B, latent) -> (..., B)."""
        out = self.decode_logits(z, y)  # (..., B, x_dim)
        if self.likelihood == "bernoulli":
            return bernoulli_log_likelihood(out, x)
        return gaussian_log_likelihood(x, out, self.decoder_log_var)

    def log_importance_weights(self, x, n_samples: int, y=None, eps=None) -> Tensor:
        """log w_k = log p(x | z_k) + log p(z_k) - log q(z_k | x), z_k ~ q(z | x): (K, B).

        The hook of ``minivae.metrics``: log p(x) ~ log mean_k w_k (importance sampling).
        """
        return self._log_weights(x, y, n_samples, eps)

    def _log_weights(self, x, y, n_samples: int, eps=None) -> Tensor:
        """(K, B) log-weights of the bound on log p(x) (log p(x | y) for the conditional models)."""
        x, y = self._check(x, y)
        q = self.posterior(x, y)
        z = q.sample(n_samples, eps)  # (K, B, latent)
        return self.log_likelihood(x, z, y) + standard_normal_log_prob(z) - q.log_prob(z)

    # --- the objective ----------------------------------------------------------------
    def elbo(self, x, y=None, eps=None) -> dict:
        """{"recon", "kl", "elbo"}: per-example Tensors (B,), elbo = recon - kl (the true bound).

        eps fixes the noise: (B, latent), or (n_samples, B, latent).
        """
        return self._bound(x, y, eps)[0]

    def _bound(self, x, y, eps):
        """(the elbo dict, q(z|x) of the batch, the samples z (B, latent) or (S, B, latent))."""
        x, y = self._check(x, y)  # (B, x_dim)
        q = self.posterior(x, y)  # (B, latent) each
        z = q.sample(self.n_samples if eps is None else None, eps)  # (S, B, latent)
        recon = mean_over_samples(self.log_likelihood(x, z, y))  # (B,)
        if self.kl == "analytic":
            kl = q.kl_to_standard()  # (B,)
        else:
            kl = mean_over_samples(q.log_prob(z) - standard_normal_log_prob(z))  # (B,)
        return {"recon": recon, "kl": kl, "elbo": recon - kl}, q, z

    def loss(self, batch, kl_weight: float = 1.0, eps=None):
        """(scalar to minimise, {"elbo", "recon", "kl", "loss"} in nats per example) of a Batch.

        loss = mean over the batch of -(recon - beta * kl_weight * kl); kl_weight is
        the warm-up factor of the training loop. With objective="iwae" the loss is
        -log mean_k w_k over k samples and the dict adds "iwae". With tc_beta != 1 the
        loss adds (tc_beta - 1) TC (beta-TCVAE) and the dict adds "tc", its batch estimate.
        The VAE reads batch.x; the conditional models read batch.y as well.
        """
        batch = check_batch(type(self).__name__, batch)
        kl_weight = check_non_negative(type(self).__name__, "kl_weight", kl_weight)
        if self.objective == "iwae":
            return self._iwae_loss(batch.x, batch.y, eps)
        terms, q, z = self._bound(batch.x, batch.y, eps)
        if self.capacity is not None:
            return self._capacity_loss(terms, kl_weight * self.capacity)
        objective = terms["recon"] - (self.beta * kl_weight) * terms["kl"]  # (B,)
        if self.tc_beta != 1.0:
            tc = total_correlation(z if z.ndim == 2 else z[0], q)  # (B,), at the first sample
            objective = objective - (self.tc_beta - 1.0) * tc
            terms = {**terms, "tc": tc}
        loss = -objective.mean()
        return loss, scalar_stats({**terms, "loss": loss})

    def _capacity_loss(self, terms: dict, c: float):
        """-mean recon + beta |mean KL - c| (Burgess et al. 2018, eq. 8); the dict adds "capacity".

        |u| is u times its sign, a number read off the forward value: d|u|/du = sign(u).
        """
        kl = terms["kl"].mean()  # the batch's rate, a scalar
        sign = 1.0 if float(kl.data) >= c else -1.0
        loss = -terms["recon"].mean() + (self.beta * sign) * (kl - c)
        return loss, scalar_stats({**terms, "loss": loss, "capacity": c})

    def _iwae_loss(self, x, y, eps):
        """-IWAE bound: log w (k, B) -> -mean_B log mean_k w; also the k-sample ELBO estimate.

        The IWAE bound (Burda et al. 2015) is log (1/k) sum_k w_k: log_mean_exp, whose
        "- log k" a test pins down (equal noise draws give the one-sample value).
        """
        x, y = self._check(x, y)
        q = self.posterior(x, y)
        z = q.sample(self.k if eps is None else None, eps)  # (k, B, latent)
        recon = self.log_likelihood(x, z, y)  # (k, B)
        log_w = recon + standard_normal_log_prob(z) - q.log_prob(z)  # (k, B)
        iwae = log_mean_exp(log_w, axis=0)  # (B,)
        loss = -iwae.mean()
        recon, elbo = mean_over_samples(recon), mean_over_samples(log_w)
        stats = {"elbo": elbo, "recon": recon, "kl": recon - elbo, "iwae": iwae, "loss": loss}
        return loss, scalar_stats(stats)

    # --- command-line options -----------------------------------------------------------
    @classmethod
    def config_from(cls, options: dict, info: dict) -> dict:
        """As ``Model.config_from``; a Gaussian decoder without a given sigma learns its sigma."""
        config = super().config_from(options, info)
        if config.get("likelihood") == "gaussian" and config.get("sigma") is None:
            config["learned_sigma"] = True
        return config
