"""The plain autoencoder (PGM Lecture 30, "Autoencoders"): z = f(x), x_hat = g(z), min sum ||g(f(x)) - x||^2.

It is the first model of the family AE -> VAE -> beta-VAE -> CVAE -> M2. It follows the
model protocol of ``minivae.models.common`` like every other model, with no prior to
sample from (``has_prior = False``).

Reductions follow ``minivae.distributions`` (sum over data dimensions per example,
mean over the batch).
"""

from __future__ import annotations

from minivae import backend as B
from minivae import ops
from minivae.distributions import bernoulli_log_likelihood
from minivae.models.common import (
    Model,
    as_input,
    check_batch,
    check_choice,
    check_hidden,
    check_positive_int,
    config_size,
    config_sizes,
    flatten_samples,
    model_dtype,
    restore_samples,
    scalar_stats,
)
from minivae.nn import MLP
from minivae.tensor import Tensor

# ----------------------------------------------------------------------------- the model


class Autoencoder(Model):
    """Deterministic encoder f and decoder g: z = f(x) (B, latent), x_hat = g(z) (B, x_dim).

    likelihood="bernoulli": the decoder outputs logits and the loss is the Bernoulli
    negative log-likelihood (binary cross-entropy summed over pixels), in nats;
    likelihood="mse": the loss is PGM Lecture 30's squared error ||g(f(x)) - x||^2 summed
    over pixels. Either way it is a sum per example and a mean over the batch.
    """

    kind = "ae"
    has_prior = False  # nothing made the codes look like N(0, I): lesson 01 shows why
    LIKELIHOODS = ("bernoulli", "mse")

    def __init__(self, x_dim: int = 784, hidden=(400,), latent: int = 20,
                 activation: str = "relu", likelihood: str = "bernoulli"):
        name = type(self).__name__
        self.x_dim = check_positive_int(name, "x_dim", x_dim)
        self.hidden = check_hidden(name, hidden)
        self.latent = check_positive_int(name, "latent", latent)
        self.activation = activation
        self.likelihood = check_choice(name, "likelihood", likelihood, self.LIKELIHOODS)
        sizes = self.layer_sizes(vars(self))
        self.encoder = MLP(sizes["encoder"], activation)  # x -> z
        self.decoder = MLP(sizes["decoder"], activation)  # z -> x

    @classmethod
    def layer_sizes(cls, c: dict) -> dict:
        """encoder x_dim -> hidden... -> latent; decoder latent -> reversed(hidden)... -> x_dim."""
        x_dim, latent = config_size(c, "x_dim"), config_size(c, "latent")
        hidden = config_sizes(c, "hidden")
        return {"encoder": [x_dim, *hidden, latent], "decoder": [latent, *reversed(hidden), x_dim]}

    @property
    def config(self) -> dict:
        return {"kind": self.kind, "x_dim": self.x_dim, "hidden": list(self.hidden),
                "latent": self.latent, "activation": self.activation,
                "likelihood": self.likelihood}  # fmt: skip

    # --- encoder and decoder -------------------------------------------------------
    def code(self, x) -> Tensor:
        """z = f(x): (B, x_dim) -> (B, latent)."""
        return self.encoder(as_input(self, x, self.x_dim))

    def encode(self, x, y=None):
        """(z, None): the code, and no variance (the code is a point, not a distribution)."""
        return self.code(x), None

    def decode_logits(self, z) -> Tensor:
        """g(z) before the output nonlinearity: (..., latent) -> (..., x_dim)."""
        flat, lead = flatten_samples(z if isinstance(z, Tensor) else Tensor(z))
        return restore_samples(self.decoder(flat), lead)

    def decode(self, z, y=None) -> Tensor:
        """Means in data space: sigmoid(logits) for Bernoulli, g(z) itself for MSE."""
        out = self.decode_logits(z)
        return ops.sigmoid(out) if self.likelihood == "bernoulli" else out

    def reconstruct(self, x, y=None) -> Tensor:
        return self.decode(self.code(x))

    def sample(self, n: int, y=None) -> Tensor:
        """Decode codes z ~ N(0, I): PGM Lecture 30's point is that this does NOT give good samples,
        since nothing made the codes of the data look like N(0, I)."""
        n = check_positive_int(type(self).__name__, "n", n)
        z = Tensor(B.rng().standard_normal(size=(n, self.latent), dtype=model_dtype(self)))
        return self.decode(z)

    # --- the objective ----------------------------------------------------------------
    def elbo(self, x, y=None) -> dict:
        """{"recon": (B,)}: log p(x | z) for Bernoulli (nats), -||x_hat - x||^2 for MSE."""
        x = as_input(self, x, self.x_dim)  # (B, x_dim)
        out = self.decoder(self.encoder(x))  # (B, x_dim)
        if self.likelihood == "bernoulli":
            recon = bernoulli_log_likelihood(out, x)  # (B,)
        else:
            diff = out - x
            recon = -(diff * diff).sum(axis=-1)  # (B,)
        return {"recon": recon}

    @classmethod
    def config_from(cls, options: dict, info: dict) -> dict:
        """As ``Model.config_from``; likelihood "gaussian" means the squared error ("mse")."""
        if options.get("likelihood") == "gaussian":
            options = {**options, "likelihood": "mse"}
        return super().config_from(options, info)

    def loss(self, batch, kl_weight: float = 1.0):
        """(mean over the batch of -recon, {"recon", "loss"}) of batch.x; kl_weight is ignored."""
        terms = self.elbo(check_batch(type(self).__name__, batch).x)
        loss = -terms["recon"].mean()
        return loss, scalar_stats({"recon": terms["recon"], "loss": loss})

    def figure_samples(self, n: int, label=None):
        raise ValueError("an autoencoder has no prior to sample from (lesson 01 shows why): "
                         "train a vae to draw samples")
