"""Evaluation: a model's numbers over a data set, importance-sampled log-likelihood, the IWAE
bound, classification error, active units.

``evaluate(model, x, y)`` averages the model's own ``evaluate(batch)`` (the model
protocol, ``minivae.models.common``) over evaluation batches; ``test_report`` adds the
importance-sampled log-likelihood, for ``minivae eval`` and the training summary.

Importance sampling (Understanding Deep Learning, ch. 17, "VAE applications: approximating sample probability";
Burda et al. 2015, appendix): with z_k ~ q(z | x),
    p(x) = E_q[p(x, z) / q(z | x)]  ~  (1/K) sum_k p(x, z_k) / q(z_k | x),
so  log p(x) ~ log mean_k w_k  with  log w_k = log p(x | z_k) + log p(z_k) - log q(z_k | x).
Its expectation is a lower bound (Jensen) that tightens as K grows; K = 5000 is the
literature's test-set number. The models provide the log-weights through
``model.log_importance_weights(x, K[, y])``; here they are drawn in chunks of
samples and combined with a running log-sum-exp, so memory stays bounded for any K.

Numbers are per example, in nats (``minivae.distributions`` has the convention).
"""

from __future__ import annotations

import math
import numbers

from minivae import backend as B
from minivae import data as D
from minivae.distributions import log_mean_exp
from minivae.tensor import Tensor, no_grad

DEFAULT_CHUNK_BYTES = 256 * 2**20  # about 256 MB of activations per chunk of samples


def _check_positive_int(where: str, name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{where}: {name} must be a positive integer (>= 1), got {value!r}")
    return int(value)


def _check_examples(where: str, x) -> int:
    """The number of examples in x (an array or Tensor, rows first), or a ValueError for none."""
    shape = getattr(getattr(x, "data", x), "shape", None)
    if shape is None:
        raise TypeError(f"{where}: x must be an array (examples, features), got "
                        f"{type(x).__name__}; use numpy.asarray(x)")  # fmt: skip
    if not shape or shape[0] == 0:
        raise ValueError(f"{where}: x holds no examples (shape {tuple(shape)}); give at least one")
    return shape[0]


def _weights_hook(model, where: str):
    hook = getattr(model, "log_importance_weights", None)
    if hook is None:
        raise TypeError(
            f"{where}: {type(model).__name__} defines no likelihood p(x) to estimate (it has no "
            "log_importance_weights); use a VAE, ConditionalVAE or SemiSupervisedVAE"
        )
    return hook


def _floats_per_sample(model) -> int:
    """Rough number of floats held per (sample, example) while computing one log-weight."""
    config = getattr(model, "config", {})
    x_dim = config.get("x_dim", 784)
    latent = config.get("latent", 50)
    hidden = sum(config.get("hidden", [500]))
    per = 4 * x_dim + 4 * hidden + 8 * latent  # decoder output, log-probs, activations, z terms
    if config.get("covariance") == "full":  # L (D, D) per example, broadcast against each z
        per += 2 * latent * latent
    if getattr(model, "sums_over_classes", False):  # M2's log p(x): one z per class
        per *= config.get("n_classes", 10)
    return max(per, 1)


def default_chunk(model, batch: int, max_bytes: int = DEFAULT_CHUNK_BYTES) -> int:
    """Samples per chunk so that one chunk's activations stay under about ``max_bytes``."""
    itemsize = B.xp.dtype(B.get_default_dtype()).itemsize
    for p in getattr(model, "parameters", list)():
        itemsize = p.data.dtype.itemsize
        break
    return max(1, int(max_bytes // (batch * _floats_per_sample(model) * itemsize)))


@no_grad()
def importance_sampled_log_likelihood(model, x, k: int = 5000, chunk: int | None = None, y=None,
                                      on_chunk=None):  # fmt: skip
    """log p(x) (or log p(x | y) for a ConditionalVAE, log p(x, y) for M2 with y), per example.

    x (B, x_dim); k importance samples from the model's q, drawn ``chunk`` at a time
    (default: about 256 MB per chunk) and combined with a running log-sum-exp.
    on_chunk(n): called after each chunk with its number of samples (a progress bar).
    Returns a host NumPy array (B,) in nats.
    """
    where = "importance_sampled_log_likelihood"
    hook = _weights_hook(model, where)
    k = _check_positive_int(where, "k", k)
    batch = _check_examples(where, x)
    chunk = default_chunk(model, batch) if chunk is None else _check_positive_int(where, "chunk", chunk)
    xp = B.xp
    total = None  # log sum_k w_k so far, (B,)
    done = 0
    while done < k:
        n = min(chunk, k - done)
        log_w = hook(x, n, y) if y is not None else hook(x, n)  # (n, B)
        log_w = log_w.data
        m = log_w.max(axis=0)  # (B,)
        m = xp.where(xp.isfinite(m), m, 0.0)
        part = m + xp.log(xp.exp(log_w - m).sum(axis=0))  # log sum over this chunk, (B,)
        total = part if total is None else xp.logaddexp(total, part)
        done += n
        if on_chunk is not None:
            on_chunk(n)
    return B.to_numpy(total - math.log(k))


def iwae_bound(model, x, k: int = 5, y=None) -> Tensor:
    """The IWAE bound log mean_k w_k per example (B,), differentiable: -mean() is a loss."""
    hook = _weights_hook(model, "iwae_bound")
    k = _check_positive_int("iwae_bound", "k", k)
    log_w = hook(x, k, y) if y is not None else hook(x, k)  # (k, B)
    return log_mean_exp(log_w, axis=0)


@no_grad()
def classification_error(model, x, y, batch_size: int = 1000) -> float:
    """Fraction of examples whose predicted class (``model.classify``) differs from y."""
    if not hasattr(model, "classify"):
        raise TypeError(f"classification_error: {type(model).__name__} has no classify(x)")
    batch_size = _check_positive_int("classification_error", "batch_size", batch_size)
    labels = B.xp.asarray(y.data if isinstance(y, Tensor) else y)
    n = labels.shape[0]
    if x.shape[0] != n:
        raise ValueError(f"classification_error: {x.shape[0]} inputs but {n} labels")
    if n == 0:
        raise ValueError("classification_error: got no examples")
    wrong = 0
    for start in range(0, n, batch_size):
        pred = model.classify(x[start : start + batch_size])
        wrong += int((pred != labels[start : start + batch_size]).sum())
    return wrong / n


def unit_activity(mu):
    """Per latent unit, the variance over the data of the posterior mean: Cov_x(E_q[z]) (host, (D,))."""
    mu = B.to_numpy(mu.data if isinstance(mu, Tensor) else mu)
    if mu.ndim != 2 or mu.shape[0] < 2:
        raise ValueError(
            f"unit_activity: needs posterior means of shape (N, latent) with N >= 2, got {mu.shape}"
        )
    return mu.astype("float64").var(axis=0)


def active_units(mu, threshold: float = 1e-2) -> int:
    """Burda et al. 2015: a unit is active when Cov_x(E_q(z|x)[z_u]) > threshold (0.01)."""
    if not threshold >= 0:
        raise ValueError(f"active_units: threshold must be >= 0, got {threshold!r}")
    return int((unit_activity(mu) > threshold).sum())


# ----------------------------------------------------------------------------- over a data set


@no_grad()
def evaluate(model, x, y=None, batch_size: int = 1000) -> dict:
    """Per-example means of ``model.evaluate(Batch(x, y))`` over a data set, in batches.

    x (N, D) host images, y their labels as the model's ``dataset_labels`` gives them, or
    None. Every number the model reports is a per-example mean, so each batch counts with
    its size.
    """
    batch_size = _check_positive_int("evaluate", "batch_size", batch_size)
    totals: dict[str, float] = {}
    n = _check_examples("evaluate", x)
    for batch in D.evaluation_batches(x, y, batch_size):
        for key, value in model.evaluate(batch).items():
            totals[key] = totals.get(key, 0.0) + value * len(batch.x)
    return {key: value / n for key, value in totals.items()}


@no_grad()
def test_report(model, x, y=None, k: int = 0, batch_size: int = 100,
                progress: bool = False) -> dict:  # fmt: skip
    """The numbers of ``minivae eval`` for host images x (and their labels y, or None).

    "test_elbo" (or "test_recon" for a model without a bound), every other number of
    ``model.evaluate`` as "test_<name>", and with k > 0 the importance-sampled
    negative log-likelihood "test_nll_k<k>" (of p(x | y) where ``model.condition``
    says the densities are conditioned on y), all per example in nats.
    progress: show a progress bar of the importance sampling (images done, time left)
    on stderr, the long part (minutes for k = 5000).
    """
    batch_size = _check_positive_int("test_report", "batch_size", batch_size)
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 0:
        raise ValueError(f"test_report: k, the importance samples per example, must be a whole "
                         f"number >= 0 (0: no likelihood), got {k!r}")  # fmt: skip
    terms = evaluate(model, x, y, batch_size=max(batch_size, 1000))
    out = {f"test_{key}": round(value, 4) for key, value in terms.items() if key != "loss"}
    if k > 0 and hasattr(model, "log_importance_weights"):
        lls = []
        bar = _progress_bar(len(x), f"log p(x) with K={k}") if progress else None
        for batch in D.evaluation_batches(x, y, batch_size):
            # the bar moves after each chunk of samples: a batch's share of an image each
            step = None if bar is None else (lambda n, b=len(batch.x): bar.update(b * n / k))  # noqa: B008 - binds this batch's size
            lls.append(importance_sampled_log_likelihood(
                model, batch.x, k=k, y=model.condition(batch), on_chunk=step))  # fmt: skip
        if bar is not None:
            bar.close()
        total = sum(float(ll.sum()) for ll in lls)
        out[f"test_nll_k{k}"] = round(-total / len(x), 3)
    out["n_examples"] = len(x)
    return out


def _progress_bar(total: int, desc: str):
    """A tqdm bar on stderr counting images, with the rate and the time left."""
    from tqdm import tqdm  # imported here: only a progress bar needs it

    shown = "{l_bar}{bar}| {n:.0f}/{total} images [{elapsed}<{remaining}, {rate_fmt}]"
    return tqdm(total=total, desc=desc, unit="image", leave=False, dynamic_ncols=True,
                bar_format=shown)  # fmt: skip
