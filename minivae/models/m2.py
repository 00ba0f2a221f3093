"""The semi-supervised VAE M2 (Kingma, Mohamed, Rezende & Welling 2014; VAE Extensions slides).

    q(y | x)    = Cat(softmax(classifier(x)))          the classifier, logits (B, C)
    q(z | x, y) = N(mu(x, y), diag sigma^2(x, y))       as in the ConditionalVAE
    p(x | y, z), p(z) = N(0, I), p(y) = 1 / C (uniform)

Labelled bound, on log p(x, y):
    L(x, y) = E_q(z|x,y)[log p(x | y, z) + log p(y) + log p(z) - log q(z | x, y)]
            = recon - KL(q(z | x, y) || p(z)) + log p(y)
Unlabelled bound, on log p(x), with an EXACT sum over the C classes:
    U(x) = sum_y q(y | x) L(x, y) + H(q(y | x))
The objective (maximised; the loss is its negative per example):
    J = sum_labelled [L(x, y) + alpha log q(y | x)] + sum_unlabelled U(x)
alpha weighs the classification term per labelled example; the paper's choice
alpha = 0.1 N / N_labelled (an expectation over the labelled set weighted 0.1 N)
is the default when n_labelled and n_total are given, and 50 (that rule for MNIST
with 100 labels) when they are not.

All terms are per-example sums over pixels and latent units (``minivae.distributions``).
In the dicts, "kl" is the KL of everything latent to its prior: of z, plus of the
label's distribution to p(y) (a point mass at the observed y for labelled data,
whose KL to p(y) is -log p(y) = log C; q(y | x) for unlabelled data), so that
"elbo" = "recon" - "kl" holds for both bounds.
"""

from __future__ import annotations

import math

from minivae import backend as B
from minivae import fast, ops
from minivae.distributions import (
    DiagonalGaussian,
    bernoulli_log_likelihood,
    categorical_log_prob,
    gaussian_log_likelihood,
    standard_normal_log_prob,
)
from minivae.models.common import (
    SemiSupervised,
    as_input,
    check_hidden,
    check_non_negative,
    check_positive_int,
    config_size,
    config_sizes,
    mean_over_samples,
    semi_supervised_loss,
)
from minivae.models.cvae import ConditionalVAE
from minivae.nn import MLP
from minivae.tensor import Tensor

# The paper's alpha = 0.1 * N / N_labelled for MNIST's 50,000 training images with 100 labels:
# the default when neither alpha nor the dataset sizes are given (it is reported in every
# loss() dict as "alpha", so a run always shows which weight it used).
PAPER_MNIST_ALPHA = 0.1 * 50_000 / 100


def class_weights(q: Tensor) -> Tensor:
    """q(y|x) as the weights of the sum over y, with entries below eps^2 of the dtype set to 0.

    Such a class adds less than eps^2 |L(x, y)| to U(x), nothing a float sum can hold. But the
    gradient its decoder rows receive is q(y|x) times a likelihood gradient, and once a trained
    classifier is confident, those products underflow into subnormal numbers, on which the
    matrix products of the backward pass run many times slower (benchmarks/BENCHMARKS.md,
    "Subnormal numbers"). Multiplying by a 0/1 mask zeroes those rows exactly, and the fast
    sum over y skips them.
    """
    floor = B.xp.finfo(q.dtype).eps ** 2
    return q * Tensor((q.data >= floor).astype(q.dtype))


class SemiSupervisedVAE(SemiSupervised, ConditionalVAE):
    """M2: a ConditionalVAE plus a classifier q(y | x) that stands in for missing labels.

    Arguments as ``ConditionalVAE`` (defaults from the paper: 500 hidden units, 50
    latent units, softplus), plus
    classifier_hidden: the classifier's hidden sizes (None: the same as ``hidden``).
    alpha: weight of log q(y | x) per labelled example; None means the paper's
        0.1 * n_total / n_labelled when both sizes are given, and otherwise
        PAPER_MNIST_ALPHA = 50 (that rule for MNIST: 50,000 images, 100 labels).
    n_labelled, n_total: dataset sizes (labelled examples, all examples).
    sum_over_y: True sums U(x) exactly over the C classes (one decoder pass of
        C * B rows); False samples one y ~ q(y | x) per example (the ablation: no
        gradient reaches the classifier through the sampled label, only through
        the entropy and the alpha term).

    A training Batch holds the unlabelled images x and the labelled x_labelled,
    y_labelled (``batch_kind = "semi-supervised"``); ``evaluate`` scores an evaluation
    Batch (x, y) with both bounds and adds the classifier's "error".
    """

    kind = "m2"
    sums_over_classes = True  # log p(x) sums over y: one z per class (metrics sizes chunks by it)

    def __init__(self, x_dim: int = 784, hidden=(500,), latent: int = 50,
                 activation: str = "softplus", likelihood: str = "bernoulli",
                 sigma: float | None = None, learned_sigma: bool = False, beta: float = 1.0,
                 n_samples: int = 1, kl: str = "analytic", n_classes: int = 10,
                 classifier_hidden=None, alpha: float | None = None,
                 n_labelled: int | None = None, n_total: int | None = None,
                 sum_over_y: bool = True):
        name = type(self).__name__
        super().__init__(x_dim, hidden, latent, activation, likelihood, sigma, learned_sigma,
                         beta, n_samples, kl, "elbo", 1, n_classes)
        self.classifier_hidden = (self.hidden if classifier_hidden is None
                                  else check_hidden(name, classifier_hidden))
        self.alpha = None if alpha is None else check_non_negative(name, "alpha", alpha)
        self.n_labelled = None if n_labelled is None else check_positive_int(name, "n_labelled", n_labelled)
        self.n_total = None if n_total is None else check_positive_int(name, "n_total", n_total)
        if self.n_labelled is not None and self.n_total is not None and self.n_labelled > self.n_total:
            raise ValueError(f"{name}: n_labelled={n_labelled} exceeds n_total={n_total}")
        self.sum_over_y = bool(sum_over_y)
        self.classifier = MLP(self.layer_sizes(vars(self))["classifier"], activation)

    @classmethod
    def layer_sizes(cls, c: dict) -> dict:
        """The ConditionalVAE's networks, plus the classifier x -> classifier_hidden... -> C."""
        sizes = super().layer_sizes(c)
        own = c.get("classifier_hidden") is not None
        inner = config_sizes(c, "classifier_hidden" if own else "hidden")
        sizes["classifier"] = [config_size(c, "x_dim"), *inner, config_size(c, "n_classes")]
        return sizes

    @property
    def config(self) -> dict:
        config = super().config
        for unused in ("objective", "k", "tc_beta"):  # M2 trains on its own bound only
            config.pop(unused)
        config.update({
            "kind": self.kind, "classifier_hidden": list(self.classifier_hidden),
            "alpha": self.alpha, "n_labelled": self.n_labelled, "n_total": self.n_total,
            "sum_over_y": self.sum_over_y,
        })  # fmt: skip
        return config

    @property
    def classification_weight(self) -> float:
        """alpha; else the paper's 0.1 * n_total / n_labelled; else PAPER_MNIST_ALPHA (50)."""
        if self.alpha is not None:
            return self.alpha
        if self.n_labelled is not None and self.n_total is not None:
            return 0.1 * self.n_total / self.n_labelled
        return PAPER_MNIST_ALPHA

    @property
    def log_prior_y(self) -> float:
        """log p(y) = -log C for the uniform prior."""
        return -math.log(self.n_classes)

    # --- the classifier ------------------------------------------------------------------
    def classifier_logits(self, x):
        """Logits of q(y | x): (B, x_dim) -> (B, C)."""
        return self.classifier(as_input(self, x, self.x_dim))

    def classify(self, x):
        """The most probable class under q(y | x): integer class indices (B,), a device array.

        Class indices are data, not a differentiable quantity, so this is an array, not a
        Tensor; ``classifier_logits`` is the Tensor to differentiate.
        """
        return B.xp.argmax(self.classifier_logits(x).data, axis=1)

    def label_error(self, x, y) -> dict:
        """{"error": the fraction of examples whose most probable class is not y}."""
        y = self.labels(y, as_input(self, x, self.x_dim).shape[0])
        return {"error": float((self.classify(x) != y).sum()) / max(int(y.shape[0]), 1)}

    # --- the data hooks of the training loop -------------------------------------------------
    DATA_CONFIG_KEYS = ("n_labelled", "n_total")

    @classmethod
    def data_config(cls, train, labelled) -> dict:
        """The dataset sizes behind the paper's alpha = 0.1 N / N_labelled."""
        return {"n_labelled": len(labelled), "n_total": len(train)}

    def _labels_or_predicted(self, x, y):
        return self.classify(x) if y is None else y

    def encode(self, x, y=None):
        """(mu, log_var) of q(z | x, y); y=None uses the classifier's predictions."""
        return super().encode(x, self._labels_or_predicted(x, y))

    def reconstruct(self, x, y=None):
        return super().reconstruct(x, self._labels_or_predicted(x, y))

    # --- the bounds -------------------------------------------------------------------------
    def elbo(self, x, y=None, eps=None) -> dict:
        """L(x, y) when y is given, U(x) otherwise: per-example Tensors (B,).

        Keys: "recon", "kl_z" (KL of q(z|x,y)), "kl" (everything latent, see the module
        docstring), "elbo" = recon - kl; U adds "entropy" H(q(y|x)).
        eps (B, latent) or (S, B, latent) fixes the noise; U uses the same eps for every class.
        """
        if y is None:
            return self._unlabelled(x, eps)["terms"]
        terms = self.conditional_elbo(x, y, eps)  # recon, kl of z
        kl = terms["kl"] - self.log_prior_y  # + KL(point mass at y || p(y)) = log C
        return {"recon": terms["recon"], "kl_z": terms["kl"], "kl": kl, "elbo": terms["recon"] - kl}

    # --- the sum over y of U(x): plain (tiled), and its fast companion ------------------------
    # Plain first, fast second (docs/DESIGN.md). ``_all_classes_tiled`` is the plain
    # version: x tiled C times, the conditional bound on every (class, example) pair. The
    # fast companion ``_expected_over_kept_classes`` gives the same numbers from the pairs
    # of nonzero weight only, with the encoder's first layer applied to x once; it pays
    # once the classifier is confident (benchmarks/BENCHMARKS.md, "Throughput of the sum
    # over y": 2.25 times faster with trained weights, the row behind "M2 with 100
    # labels"), and tests/test_m2_fast_path.py holds it equal to the plain version.
    # ``fast_sum_over_y`` None follows the library's switch (``minivae.fast.enabled``,
    # ``MINIVAE_FAST=0`` turns it off with every other fast path); True or False, set on a
    # model or on the class, decides for that model or for every model.
    fast_sum_over_y: bool | None = None

    def _expected_over_classes(self, x, weights, eps):
        """(sum_y w_yb recon_yb, sum_y w_yb KL_yb), each (B,), for class weights w (C, B)."""
        use_fast = fast.enabled if self.fast_sum_over_y is None else self.fast_sum_over_y
        if use_fast:
            return self._expected_over_kept_classes(x, weights, eps)
        recon_c, kl_c = self._all_classes_tiled(x, eps)  # (C, B)
        return (weights * recon_c).sum(axis=0), (weights * kl_c).sum(axis=0)

    def _all_classes_tiled(self, x, eps):
        """The plain version: x tiled C times (C * B rows, class-major), then the conditional bound."""
        x = as_input(self, x, self.x_dim)  # (B, x_dim)
        n, c = x.shape[0], self.n_classes
        x_rep = ops.concatenate([x] * c, axis=0)  # (C * B, x_dim), row y * B + b
        y_rep = B.xp.repeat(B.xp.arange(c), n)  # (C * B,)
        if eps is not None:  # the same noise for every class
            eps = B.xp.concatenate([_raw(eps)] * c, axis=-2)
        terms = self.conditional_elbo(x_rep, y_rep, eps)  # each (C * B,)
        return terms["recon"].reshape(c, n), terms["kl"].reshape(c, n)  # (C, B)

    def _expected_over_kept_classes(self, x, weights, eps):
        """FAST COMPANION of ``_all_classes_tiled``: its numbers, from the pairs (y, b) of weight > 0.

        A trained classifier leaves about 1.5 of the 10 classes per example with a weight
        (q(y|x) >= eps^2, ``class_weights``; benchmarks/BENCHMARKS.md, "Throughput of the
        sum over y"); the others add exactly 0 to U(x) and to every gradient, so their
        C * B rows need not be computed. The P kept pairs are gathered and summed back by
        products with constant one-hot matrices (a row gather is a product with a one-hot
        matrix, and its backward is the product with the transpose; at training batch
        sizes that is faster than indexing, whose backward is an add.at):
            pick_b (P, B): row p has a 1 at the example b_p;   pick_y (P, C): at the class y_p.
        The encoder's first layer is linear in its input [x, onehot(y)]
        (``MLP.first_layer_part``):
            layer([x, onehot(y)]) = x @ W_x + onehot(y) @ W_y + bias,
        so x @ W_x is computed once, (B, H), and each pair's row is
            pick_b @ (x @ W_x) + (pick_y @ W_y + bias)      (P, H).
        The decoder runs on the P pairs' z; the likelihood reads x's rows, pick_b x.
        """
        x = as_input(self, x, self.x_dim)  # (B, x_dim)
        dtype = x.dtype
        classes, examples = B.xp.nonzero(weights.data)  # (P,) each, class-major like tiling
        pick_b = Tensor(B.xp.eye(x.shape[0], dtype=dtype)[examples])  # (P, B)
        pick_y = Tensor(B.xp.eye(self.n_classes, dtype=dtype)[classes])  # (P, C) = onehot(y_p)
        x_part = self.encoder.first_layer_part(x, 0)  # (B, H): x @ W_x, once per example
        y_part = self.encoder.first_layer_part(pick_y, self.x_dim, bias=True)  # (P, H)
        h = self.encoder.after_first_layer(pick_b @ x_part + y_part)  # (P, 2 latent)
        q = DiagonalGaussian(h[:, : self.latent], h[:, self.latent :])  # (P, latent) each
        if eps is not None:  # the same noise for every class: each pair takes its example's
            eps = _raw(eps)[..., examples, :]
        z = q.sample(self.n_samples if eps is None else None, eps)  # (S, P, latent)
        out = self.decode_logits(z, classes)  # (S, P, x_dim)
        x_rows = Tensor(x.data[examples])  # (P, x_dim), data: no gradient
        if self.likelihood == "bernoulli":
            log_px = bernoulli_log_likelihood(out, x_rows)  # (S, P)
        else:
            log_px = gaussian_log_likelihood(x_rows, out, self.decoder_log_var)  # (S, P)
        recon = mean_over_samples(log_px)  # (P,)
        if self.kl == "analytic":
            kl = q.kl_to_standard()  # (P,)
        else:
            kl = mean_over_samples(q.log_prob(z) - standard_normal_log_prob(z))  # (P,)
        w = weights[classes, examples]  # (P,): the weights of the kept pairs
        sum_per_example = pick_b.T  # (B, P): sums each example's pairs
        recon = (sum_per_example @ (w * recon).reshape(-1, 1)).reshape(-1)  # (B,)
        kl = (sum_per_example @ (w * kl).reshape(-1, 1)).reshape(-1)  # (B,)
        return recon, kl

    def _unlabelled(self, x, eps=None, kl_scale: float = 1.0) -> dict:
        """U(x) (the true bound, in "terms") and the objective with the z-KL scaled by kl_scale."""
        logits = self.classifier_logits(x)  # (B, C)
        log_q = ops.log_softmax(logits, axis=1)  # (B, C)
        q = ops.exp(log_q)  # (B, C)
        entropy = -(q * log_q).sum(axis=1)  # H(q(y|x)), (B,)
        kl_y = -entropy - self.log_prior_y  # KL(q(y|x) || p(y)) = sum q log q + log C, (B,)
        if self.sum_over_y:
            q_t = class_weights(q.T)  # (C, B): q(y|x), 0 where it is negligibly small
            # sum_y q(y|x) E[log p(x|y,z)] and sum_y q(y|x) KL(q(z|x,y) || p(z)), (B,) each
            recon, kl_z = self._expected_over_classes(x, q_t, eps)
        else:  # one y ~ q(y|x) per example (Gumbel-max), no gradient through the choice
            gumbel = -B.xp.log(-B.xp.log(B.rng().random(size=logits.shape, dtype=logits.dtype)))
            y_hat = B.xp.argmax(logits.data + gumbel, axis=1)  # (B,)
            terms = self.conditional_elbo(x, y_hat, eps)
            recon, kl_z = terms["recon"], terms["kl"]
        kl = kl_z + kl_y
        objective = recon - kl_scale * kl_z - kl_y
        terms = {"recon": recon, "kl_z": kl_z, "kl": kl, "elbo": recon - kl, "entropy": entropy}
        return {"terms": terms, "objective": objective}

    def log_importance_weights(self, x, n_samples: int, y=None, eps=None):
        """(K, B) log-weights for log p(x, y) (y given) or log p(x) (y summed out exactly).

        Without y, weight k is log sum_y p(y) p(x, z_ky | y) / q(z_ky | x, y) with one
        z_ky ~ q(z | x, y) per class: an unbiased estimate of p(x) = sum_y p(y) p(x | y).
        """
        if y is not None:
            return self.conditional_log_importance_weights(x, n_samples, y, eps) + self.log_prior_y
        x = as_input(self, x, self.x_dim)
        n, c = x.shape[0], self.n_classes
        x_rep = ops.concatenate([x] * c, axis=0)  # (C * B, x_dim)
        y_rep = B.xp.repeat(B.xp.arange(c), n)
        log_w = self.conditional_log_importance_weights(x_rep, n_samples, y_rep, eps)  # (K, C * B)
        log_w = log_w.reshape(log_w.shape[0], c, n) + self.log_prior_y  # (K, C, B)
        return ops.logsumexp(log_w, axis=1)  # (K, B)

    def condition(self, batch):
        """log p(x) sums over y: the densities of M2 need no label."""
        return

    # --- the objective ----------------------------------------------------------------------
    def _loss_parts(self, x_unlabelled=None, x_labelled=None, y_labelled=None,
                   kl_weight: float = 1.0):
        """(-J / (B_u + B_l), stats): the M2 objective per example, either part may be None.

        ``loss(batch)`` calls it with the Batch's x, x_labelled and y_labelled.
        stats (nats per example): "elbo", "recon", "kl" over all examples of the batch
        (true bounds, beta = 1), "loss", "labelled_elbo", "unlabelled_elbo",
        "classification_loss" (mean -log q(y|x) over the labelled examples), "alpha".
        """
        name = type(self).__name__
        kl_weight = check_non_negative(name, "kl_weight", kl_weight)
        kl_scale = self.beta * kl_weight
        objective, bounds, stats = [], [], {}
        if x_labelled is not None:
            if y_labelled is None:
                raise ValueError(f"{name}: x_labelled was given without y_labelled")
            lab = self.elbo(x_labelled, y_labelled)  # each (B_l,)
            log_q_y = categorical_log_prob(self.classifier_logits(x_labelled),
                                           self.labels(y_labelled))  # log q(y|x), (B_l,)
            alpha = self.classification_weight
            obj_l = lab["recon"] - kl_scale * lab["kl_z"] + self.log_prior_y + alpha * log_q_y
            objective.append(obj_l.sum())
            bounds.append(lab)
            stats["labelled_elbo"] = lab["elbo"]
            stats["classification_loss"] = -log_q_y
            stats["alpha"] = alpha
        if x_unlabelled is not None:
            un = self._unlabelled(x_unlabelled, None, kl_scale)
            objective.append(un["objective"].sum())
            bounds.append(un["terms"])
            stats["unlabelled_elbo"] = un["terms"]["elbo"]
        return semi_supervised_loss(name, objective, bounds, stats)


def _raw(eps):
    """Fixed noise as a raw array: a Tensor's data, or the array itself."""
    return eps.data if isinstance(eps, Tensor) else eps
