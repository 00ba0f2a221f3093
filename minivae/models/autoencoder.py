"""The plain autoencoder (seed 000, "Autoencoders"): z = f(x), x_hat = g(z), min sum ||g(f(x)) - x||^2.

It is the first model of the family AE -> VAE -> beta-VAE -> CVAE -> M2, and this
file also holds the small checks the other models share (sizes, inputs, labels),
so that every model rejects bad input with the same clear messages.

Reductions follow ``minivae.distributions`` (sum over data dimensions per example,
mean over the batch).
"""

from __future__ import annotations

import numbers

from minivae import backend as B
from minivae import ops
from minivae.distributions import bernoulli_log_likelihood
from minivae.nn import MLP, Module
from minivae.tensor import Tensor

# ----------------------------------------------------------------------------- shared checks


def check_positive_int(owner: str, name: str, value) -> int:
    """value as an int (Python or NumPy integer), or a ValueError naming it and the valid range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{owner}: {name} must be a positive integer (>= 1), got {value!r}")
    return int(value)


def check_hidden(owner: str, hidden) -> tuple:
    """Hidden layer sizes as a tuple of positive ints; () means no hidden layer (linear maps)."""
    if isinstance(hidden, int) and not isinstance(hidden, bool):
        hidden = (hidden,)
    try:
        sizes = tuple(hidden)
    except TypeError:
        raise ValueError(f"{owner}: hidden must be a list of layer sizes, got {hidden!r}") from None
    return tuple(check_positive_int(owner, "every hidden size", h) for h in sizes)


def check_choice(owner: str, name: str, value, choices) -> str:
    if value not in choices:
        raise ValueError(f"{owner}: {name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def check_non_negative(owner: str, name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
        raise ValueError(f"{owner}: {name} must be a number >= 0, got {value!r}")
    return float(value)


def model_dtype(model: Module):
    """The floating dtype of the model's parameters (inputs are cast to it).

    Parameters keep the dtype they were made with (loading a state casts into them),
    so it is looked up once per model and remembered.
    """
    dtype = model.__dict__.get("_param_dtype")
    if dtype is None:
        first = next(model.named_parameters(), None)
        dtype = first[1].dtype if first is not None else B.np.dtype(B.get_default_dtype())
        model.__dict__["_param_dtype"] = dtype
    return dtype


def as_input(model: Module, x, x_dim: int) -> Tensor:
    """x as a (B, x_dim) Tensor of the model's dtype, or a ValueError naming both widths."""
    owner = type(model).__name__
    t = x if isinstance(x, Tensor) else Tensor(x)
    if t.ndim != 2 or t.shape[1] != x_dim:
        width = t.shape[-1] if t.ndim else "no"
        raise ValueError(
            f"{owner}: input of shape {tuple(t.shape)} has width {width}, expected "
            f"(batch, {x_dim}) with x_dim={x_dim} (flatten images first: x.reshape(len(x), -1))"
        )
    dtype = model_dtype(model)
    if t.dtype != dtype:  # uint8 pixels, float64 arrays: compute in the model's dtype
        t = Tensor(t.data.astype(dtype), requires_grad=False) if not t.requires_grad else t
    return t


def check_labels(owner: str, y, n_classes: int, batch: int | None = None):
    """Integer class labels as a device array (B,), each in [0, n_classes), or a ValueError."""
    data = y.data if isinstance(y, Tensor) else y
    if isinstance(data, numbers.Integral) and not isinstance(data, bool):
        data = [int(data)]
    data = B.xp.asarray(data)
    if data.dtype.kind not in "iu":
        raise ValueError(f"{owner}: labels must be integers, got dtype {data.dtype} ({data!r})")
    if data.ndim != 1 or (batch is not None and data.shape[0] != batch):
        expected = f"({batch},)" if batch is not None else "(batch,)"
        raise ValueError(f"{owner}: labels of shape {tuple(data.shape)}, expected {expected}")
    if data.size and not bool(((data >= 0) & (data < n_classes)).all()):  # one device read
        low, high = int(data.min()), int(data.max())
        bad = low if low < 0 else high
        if low < 0 or high >= n_classes:
            raise ValueError(
                f"{owner}: label {bad} is outside the valid range [0, {n_classes}) "
                f"(n_classes={n_classes})"
            )
    return data.astype(B.xp.int64)


def one_hot(labels, n_classes: int, dtype) -> Tensor:
    """A constant (B, C) Tensor with a one in each row's label column."""
    return Tensor(B.xp.eye(n_classes, dtype=dtype)[labels])


def flatten_samples(z: Tensor) -> tuple:
    """z (..., D) -> (N, D) for the MLPs, and the leading shape to restore afterwards."""
    lead = z.shape[:-1]
    if z.ndim == 2:
        return z, lead
    return z.reshape(-1, z.shape[-1]), lead


def restore_samples(h: Tensor, lead: tuple) -> Tensor:
    """(N, F) -> (*lead, F): undo flatten_samples."""
    if len(lead) == 1:
        return h
    return h.reshape(*lead, h.shape[-1])


def mean_over_samples(a: Tensor, batch_ndim: int = 1) -> Tensor:
    """Average the leading Monte-Carlo sample axes: (S, B) -> (B,); (B,) stays."""
    extra = a.ndim - batch_ndim
    return a.mean(axis=tuple(range(extra))) if extra > 0 else a


def scalar_stats(terms: dict) -> dict:
    """Per-example means of (B,) Tensors as Python floats (nats per example)."""
    return {name: _mean(t.data) if isinstance(t, Tensor) else float(t) for name, t in terms.items()}


def semi_supervised_loss(owner: str, objective: list, bounds: list, stats: dict):
    """(loss, stats) of a semi-supervised model from its labelled and unlabelled parts.

    objective: the summed objective of each part present (Tensors); bounds: each part's
    dict of per-example bounds ("elbo", "recon", "kl"); stats: per-part extras. The loss is
    minus the objective per example of the batch; "elbo", "recon", "kl" are per-example
    means over both parts.
    """
    if not objective:
        raise ValueError(f"{owner}: loss() needs x_unlabelled, or x_labelled with y_labelled")
    count = sum(b["elbo"].shape[0] for b in bounds)
    loss = -(objective[0] if len(objective) == 1 else objective[0] + objective[1]) / count
    out = scalar_stats(stats)
    for key in ("elbo", "recon", "kl"):
        out[key] = sum(float(b[key].data.sum()) for b in bounds) / count
    out["loss"] = float(loss.data)
    return loss, out


def _mean(a) -> float:
    """The mean of an array as a Python float (its sum over its size: cheaper than a.mean())."""
    return float(a.sum()) / a.size if a.size else float("nan")


# ----------------------------------------------------------------------------- the model


class Autoencoder(Module):
    """Deterministic encoder f and decoder g: z = f(x) (B, latent), x_hat = g(z) (B, x_dim).

    likelihood="bernoulli": the decoder outputs logits and the loss is the Bernoulli
    negative log-likelihood (binary cross-entropy summed over pixels), in nats;
    likelihood="mse": the loss is seed 000's squared error ||g(f(x)) - x||^2 summed
    over pixels. Either way it is a sum per example and a mean over the batch.
    """

    kind = "ae"
    LIKELIHOODS = ("bernoulli", "mse")

    def __init__(self, x_dim: int = 784, hidden=(400,), latent: int = 20,
                 activation: str = "relu", likelihood: str = "bernoulli"):
        name = type(self).__name__
        self.x_dim = check_positive_int(name, "x_dim", x_dim)
        self.hidden = check_hidden(name, hidden)
        self.latent = check_positive_int(name, "latent", latent)
        self.activation = activation
        self.likelihood = check_choice(name, "likelihood", likelihood, self.LIKELIHOODS)
        self.encoder = MLP([self.x_dim, *self.hidden, self.latent], activation)  # x -> z
        self.decoder = MLP([self.latent, *reversed(self.hidden), self.x_dim], activation)  # z -> x

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
        """Decode codes z ~ N(0, I): seed 000's point is that this does NOT give good samples,
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

    def loss(self, x, y=None, kl_weight: float = 1.0):
        """(mean over the batch of -recon, {"recon", "loss"}); y and kl_weight are ignored."""
        terms = self.elbo(x)
        loss = -terms["recon"].mean()
        return loss, scalar_stats({"recon": terms["recon"], "loss": loss})
