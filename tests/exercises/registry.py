"""The gradient-check exercises: one entry per derivation a learner writes the backward of.

Each ``Exercise`` gives the forward pass (plain NumPy, already written), an input
maker (a NumPy Generator -> float64 inputs in a safe domain), the names of the
inputs, and which of them get a gradient. The learner writes

    <name>_backward(grad_out, *inputs) -> tuple of gradients

that receives the upstream gradient ``grad_out`` (shaped like the forward's
output) and every input of the forward, in order, and returns the gradient of
each input named in ``grads``, in that order (shaped like that input). Inputs
that are data or noise (x, eps, labels) are passed in but get no gradient.

tests/exercises/check.py turns a forward and a backward into a minivae Function
and gradient-checks it; tests/exercises/template.py holds one stub per entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from minivae.backend import LOG_2PI, np


@dataclass(frozen=True)
class Exercise:
    """One derivation: the forward is given, the learner writes ``<name>_backward``."""

    name: str  # the learner's function is f"{name}_backward"
    title: str  # what is derived, in words
    math: str  # the forward, one line
    lecture: str  # seed file and section where the formula comes from
    forward: Callable  # forward(*inputs) -> output array (NumPy, float64)
    make_inputs: Callable  # make_inputs(rng) -> tuple of inputs, in the order of `inputs`
    inputs: tuple  # the names of the forward's inputs, in order
    grads: tuple  # the inputs that get a gradient, in the order the backward returns them
    shapes: str  # the shapes used by the check, in words
    hint: str  # what to derive, without giving the answer away

    @property
    def answer_name(self) -> str:
        return f"{self.name}_backward"


# ----------------------------------------------------------------------------- domains


def _away_from_zero(rng, shape, low=0.1, high=2.0):
    """Values with |x| in [low, high] and random signs: no kink of relu within eps of them."""
    return rng.uniform(low, high, size=shape) * rng.choice([-1.0, 1.0], size=shape)


# ----------------------------------------------------------------------------- forwards (given)


def dense_forward(x, W, b):
    return x @ W + b  # (B, n_in) @ (n_in, n_out) + (n_out,) -> (B, n_out)


def relu_forward(x):
    return np.maximum(x, 0.0)


def softplus_forward(x):
    return np.logaddexp(0.0, x)  # log(1 + e^x) without overflow


def sigmoid_forward(x):
    return 0.5 + 0.5 * np.tanh(0.5 * x)  # 1 / (1 + e^-x) without overflow


def broadcast_add_forward(a, b):
    return a + b  # (B, D) + (D,): b is copied along the batch axis


def sum_axis_forward(x):
    return x.sum(axis=1)  # (B, K, D) -> (B, D)


def bernoulli_log_prob_forward(logits, x):
    return x * logits - np.logaddexp(0.0, logits)  # elementwise, (B, D)


def gaussian_log_prob_forward(x, mean, log_var):
    return -0.5 * (LOG_2PI + log_var + (x - mean) ** 2 * np.exp(-log_var))  # elementwise, (B, D)


def reparameterize_forward(mu, log_var, eps):
    return mu + np.exp(0.5 * log_var) * eps  # (B, L)


def kl_normal_std_forward(mu, log_var):
    return 0.5 * (mu**2 + np.exp(log_var) - 1.0 - log_var).sum(axis=1)  # (B, L) -> (B,)


def _logsumexp(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def logsumexp_forward(x):
    return _logsumexp(x, 1)[:, 0]  # (B, K) -> (B,)


def importance_weights_forward(log_w):
    return np.exp(log_w - _logsumexp(log_w, 1))  # (B, K) -> (B, K), each row sums to 1


def cross_entropy_forward(logits, labels):
    log_q = logits - _logsumexp(logits, 1)  # (B, C)
    return -log_q[np.arange(len(labels)), labels]  # (B,)


def entropy_forward(logits):
    log_q = logits - _logsumexp(logits, 1)  # (B, C)
    return -(np.exp(log_q) * log_q).sum(axis=1)  # (B,)


# ----------------------------------------------------------------------------- the exercises

_NETWORKS = (
    "seed 000 (Lecture 30), slides 'Autoencoders' and 'VAE Cost function': the networks "
    "z = f_phi(x), y = g_theta(z); seed 003, 'Nonlinear latent variable model [1]'"
)

EXERCISES = (
    Exercise(
        name="dense",
        title="dense layer: dL/dx, dL/dW, dL/db",
        math="y = x W + b",
        lecture=_NETWORKS,
        forward=dense_forward,
        make_inputs=lambda rng: (
            rng.standard_normal((3, 4)),
            rng.standard_normal((4, 2)),
            rng.standard_normal(2),
        ),
        inputs=("x", "W", "b"),
        grads=("x", "W", "b"),
        shapes="x (B, n_in) = (3, 4), W (n_in, n_out) = (4, 2), b (n_out,) = (2,); "
        "y and grad_out (B, n_out) = (3, 2)",
        hint="write y_bj = sum_i x_bi W_ij + b_j and differentiate one entry; each gradient must "
        "have its input's shape, which tells you where the transposes go. b is added to every "
        "row, so its gradient sums over the batch.",
    ),
    Exercise(
        name="relu",
        title="ReLU: dL/dx",
        math="y = max(x, 0), elementwise",
        lecture=_NETWORKS,
        forward=relu_forward,
        make_inputs=lambda rng: (_away_from_zero(rng, (3, 4)),),
        inputs=("x",),
        grads=("x",),
        shapes="x, y, grad_out (3, 4); the check keeps |x| >= 0.1, away from the kink",
        hint="dy/dx is 1 where x > 0 and 0 elsewhere; an elementwise op's backward is "
        "grad_out times the local derivative.",
    ),
    Exercise(
        name="softplus",
        title="softplus: dL/dx",
        math="y = log(1 + e^x), elementwise",
        lecture=_NETWORKS + "; it is the log-normalizer of the Bernoulli (exercise "
        "bernoulli_log_prob)",
        forward=softplus_forward,
        make_inputs=lambda rng: (2.0 * rng.standard_normal((3, 4)),),
        inputs=("x",),
        grads=("x",),
        shapes="x, y, grad_out (3, 4)",
        hint="differentiate log(1 + e^x) and simplify: the result is a function you know. "
        "Compute it in a form that does not overflow for large |x|.",
    ),
    Exercise(
        name="sigmoid",
        title="sigmoid: dL/dx",
        math="y = 1 / (1 + e^-x), elementwise",
        lecture=_NETWORKS + "; the mean of a Bernoulli decoder is sigmoid(logits)",
        forward=sigmoid_forward,
        make_inputs=lambda rng: (2.0 * rng.standard_normal((3, 4)),),
        inputs=("x",),
        grads=("x",),
        shapes="x, y, grad_out (3, 4)",
        hint="write dy/dx in terms of y itself.",
    ),
    Exercise(
        name="broadcast_add",
        title="broadcasting add: dL/da, dL/db",
        math="y = a + b with a (B, D) and b (D,) (b is added to every row)",
        lecture=_NETWORKS + "; the bias of every layer is added this way",
        forward=broadcast_add_forward,
        make_inputs=lambda rng: (rng.standard_normal((3, 4)), rng.standard_normal(4)),
        inputs=("a", "b"),
        grads=("a", "b"),
        shapes="a (3, 4), b (4,), y and grad_out (3, 4)",
        hint="broadcasting copies b into every row; the adjoint of a copy is a sum. "
        "The gradient of b has b's shape (4,), not (3, 4).",
    ),
    Exercise(
        name="sum_axis",
        title="sum over an axis: dL/dx",
        math="y = x.sum(axis=1), for x (B, K, D)",
        lecture="seed 001 (Series 9), Problem 1.7: the sum over latent dimensions j = 1..J; "
        "losses are sums over dimensions per example",
        forward=sum_axis_forward,
        make_inputs=lambda rng: (rng.standard_normal((2, 3, 4)),),
        inputs=("x",),
        grads=("x",),
        shapes="x (B, K, D) = (2, 3, 4); y and grad_out (B, D) = (2, 4)",
        hint="every x[b, k, d] adds into y[b, d] with weight 1: put the summed axis back "
        "(np.expand_dims) and copy grad_out along it (np.broadcast_to or np.repeat).",
    ),
    Exercise(
        name="bernoulli_log_prob",
        title="Bernoulli log-likelihood from logits: dL/dlogits",
        math="log p(x | l) = x * l - softplus(l), elementwise, x in [0, 1]",
        lecture="seed 001 (Series 9), Problem 1: the reconstruction term "
        "E_z[log p_theta(x | z)] of the ELBO, for a Bernoulli decoder",
        forward=bernoulli_log_prob_forward,
        make_inputs=lambda rng: (2.0 * rng.standard_normal((3, 4)), rng.uniform(0.0, 1.0, (3, 4))),
        inputs=("logits", "x"),
        grads=("logits",),
        shapes="logits, x, output, grad_out (3, 4); x is data and gets no gradient",
        hint="use your softplus derivative; the answer is a difference of two terms with a "
        "meaning (data minus prediction).",
    ),
    Exercise(
        name="gaussian_log_prob",
        title="Gaussian log-likelihood: dL/dmean, dL/dlog_var",
        math="log N(x | m, e^v) = -(log 2pi + v + (x - m)^2 e^(-v)) / 2, elementwise "
        "(v = log variance)",
        lecture="seed 000 (Lecture 30), slide 'Variational Inference View': "
        "x ~ N(g_theta(z), sigma_y^2 I); seed 003, 'Nonlinear latent variable model [1]'",
        forward=gaussian_log_prob_forward,
        make_inputs=lambda rng: (
            rng.standard_normal((3, 4)),
            rng.standard_normal((3, 4)),
            rng.uniform(-1.0, 1.0, (3, 4)),
        ),
        inputs=("x", "mean", "log_var"),
        grads=("mean", "log_var"),
        shapes="x, mean, log_var, output, grad_out (3, 4); x is data and gets no gradient",
        hint="treat v as the variable (not sigma): d/dv e^(-v) = -e^(-v). Check the sign of "
        "d/dm (x - m)^2.",
    ),
    Exercise(
        name="reparameterize",
        title="reparameterization trick: dL/dmu, dL/dlog_var",
        math="z = mu + exp(log_var / 2) * eps, elementwise (eps ~ N(0, I) is fixed noise)",
        lecture="seed 000 (Lecture 30), slide 'Reparameterization Trick': "
        "dz/dphi = dmu/dphi + eps dsigma/dphi, with sigma = exp(log sigma^2 / 2)",
        forward=reparameterize_forward,
        make_inputs=lambda rng: (
            rng.standard_normal((3, 4)),
            rng.uniform(-1.0, 1.0, (3, 4)),
            rng.standard_normal((3, 4)),
        ),
        inputs=("mu", "log_var", "eps"),
        grads=("mu", "log_var"),
        shapes="mu, log_var, eps, z, grad_out (3, 4); eps is noise and gets no gradient",
        hint="dz/dmu = 1; for log_var use the chain rule through sigma = exp(log_var / 2).",
    ),
    Exercise(
        name="kl_normal_std",
        title="analytic KL to N(0, I): dKL/dmu, dKL/dlog_var",
        math="KL = 1/2 sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2), sigma^2 = exp(log_var), "
        "summed over the latent axis",
        lecture="seed 001 (Series 9), Problem 1.7: -D_KL = 1/2 sum_j (1 + log sigma_j^2 - mu_j^2 "
        "- sigma_j^2)",
        forward=kl_normal_std_forward,
        make_inputs=lambda rng: (rng.standard_normal((3, 4)), rng.uniform(-1.0, 1.0, (3, 4))),
        inputs=("mu", "log_var"),
        grads=("mu", "log_var"),
        shapes="mu, log_var (B, L) = (3, 4); KL and grad_out (B,) = (3,)",
        hint="differentiate with respect to log_var, not sigma (sigma^2 = e^log_var). "
        "grad_out has one entry per example: give it back its latent axis before multiplying.",
    ),
    Exercise(
        name="logsumexp",
        title="log-sum-exp: dL/dx",
        math="y_b = log sum_k exp(x_bk), over axis 1",
        lecture="seed 003, 'VAE applications [1]': importance sampling, "
        "log p(x) ~ logsumexp_k(log w_k) - log K",
        forward=logsumexp_forward,
        make_inputs=lambda rng: (3.0 * rng.standard_normal((3, 5)),),
        inputs=("x",),
        grads=("x",),
        shapes="x (B, K) = (3, 5); y and grad_out (B,) = (3,)",
        hint="dy_b/dx_bk is a famous normalized function of x; compute it stably "
        "(subtract the row max, or use y itself).",
    ),
    Exercise(
        name="importance_weights",
        title="normalized importance weights: dL/dlog_w",
        math="w_bk = exp(log_w_bk) / sum_j exp(log_w_bj) = softmax(log_w) over axis 1",
        lecture="seed 003, 'VAE applications [1]': importance sampling weights the samples",
        forward=importance_weights_forward,
        make_inputs=lambda rng: (2.0 * rng.standard_normal((2, 5)),),
        inputs=("log_w",),
        grads=("log_w",),
        shapes="log_w, w, grad_out (B, K) = (2, 5)",
        hint="derive dw_i/dlog_w_j in two cases (i = j and i != j), write it with w alone, "
        "then apply it to grad_out along each row without building the (K, K) matrix.",
    ),
    Exercise(
        name="cross_entropy",
        title="softmax cross-entropy from logits: dL/dlogits",
        math="loss_b = -log softmax(logits_b)[y_b] = logsumexp(logits_b) - logits_b[y_b]",
        lecture="seed 004, 'Overall training objective': the classification term that trains "
        "q_phi(y|x) on labelled data (Kingma et al. 2014 use -log q(y|x); the slide writes it "
        "as a squared error)",
        forward=cross_entropy_forward,
        make_inputs=lambda rng: (2.0 * rng.standard_normal((4, 3)), rng.integers(0, 3, size=4)),
        inputs=("logits", "labels"),
        grads=("logits",),
        shapes="logits (B, C) = (4, 3), integer labels (B,) = (4,); loss and grad_out (B,)",
        hint="use your logsumexp derivative for the first term; the second term picks one "
        "entry per row (a one-hot).",
    ),
    Exercise(
        name="entropy",
        title="entropy of q(y|x) in the M2 unlabelled bound: dH/dlogits",
        math="H_b = -sum_y q_by log q_by with q = softmax(logits) over axis 1",
        lecture="seed 004, 'What does the training objective look like?' (semi-supervised VAE): "
        "U(x) = sum_y q(y|x) L(x, y) + H(q(y|x)); the slide's -D_KL(q(y|x) || p(y)) is "
        "H(q) - log C for a uniform p(y)",
        forward=entropy_forward,
        make_inputs=lambda rng: (1.5 * rng.standard_normal((3, 4)),),
        inputs=("logits",),
        grads=("logits",),
        shapes="logits (B, C) = (3, 4); H and grad_out (B,) = (3,)",
        hint="first dH/dq_y = -(log q_y + 1), then the softmax Jacobian (exercise "
        "importance_weights); the constant 1 drops out because sum_y q_y = 1.",
    ),
)

BY_NAME = {e.name: e for e in EXERCISES}
