"""The gradient exercises: the forward pass is given, the learner writes its backward pass.

Each ``GradientExercise`` gives the forward pass (plain NumPy, float64, already
written), an input maker (a NumPy Generator -> float64 inputs in a safe domain),
the names of the inputs, and which of them get a gradient. The learner writes

    <name>_backward(grad_out, *inputs) -> tuple of gradients

that receives the upstream gradient ``grad_out`` (shaped like the forward's
output) and every input of the forward, in order, and returns the gradient of
each input named in ``grads``, in that order (shaped like that input). Inputs
that are data or noise (x, eps, labels) are passed in but get no gradient.

tests/exercises/check.py turns a forward and a backward into a minivae Function
and gradient-checks it; tests/exercises/registry.py puts these exercises in the
order of the lessons, beside the value and engine exercises.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from minivae.backend import LOG_2PI, np


@dataclass(frozen=True)
class GradientExercise:
    """One derivation: the forward is given, the learner writes ``<name>_backward``."""

    name: str  # the learner's function is f"{name}_backward"
    title: str  # what is derived, in words
    math: str  # the forward, one line
    lecture: str  # the lecture notes' title and section where the formula comes from
    forward: Callable  # forward(*inputs) -> output array (NumPy, float64)
    make_inputs: Callable  # make_inputs(rng) -> tuple of inputs, in the order of `inputs`
    inputs: tuple  # the names of the forward's inputs, in order
    grads: tuple  # the inputs that get a gradient, in the order the backward returns them
    shapes: str  # the shapes used by the check, in words
    hint: str  # what to derive, without giving the answer away

    kind = "gradient"

    @property
    def answer_name(self) -> str:
        return f"{self.name}_backward"

    @property
    def arguments(self) -> tuple:
        """The parameters of the learner's function, in order."""
        return ("grad_out", *self.inputs)

    @property
    def returns(self) -> str:
        """What the learner's function returns, as the template writes it."""
        names = ", ".join(f"d_{n}" for n in self.grads)
        return f"({names},)" if len(self.grads) == 1 else f"({names})"


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



def kl_diag_forward(mu_q, log_var_q, mu_p, log_var_p):
    var_q, var_p = np.exp(log_var_q), np.exp(log_var_p)  # sigma^2 of q and of p, (B, J)
    terms = log_var_p - log_var_q + (var_q + (mu_q - mu_p) ** 2) / var_p - 1.0
    return 0.5 * terms.sum(axis=1)  # (B, J) -> (B,)


def reparameterize_full_forward(mu, L, eps):
    lower = np.tril(L)  # (B, D, D): only the lower triangle is read
    return mu + (lower @ eps[:, :, None])[:, :, 0]  # (B, D)


def kl_full_forward(mu, L):
    lower = np.tril(L)  # (B, D, D)
    d = L.shape[-1]
    log_det = 2.0 * np.log(np.diagonal(lower, axis1=1, axis2=2)).sum(axis=1)  # log det L L^T
    return 0.5 * ((lower**2).sum(axis=(1, 2)) + (mu**2).sum(axis=1) - d - log_det)  # (B,)


def m2_unlabelled_bound_forward(logits, bounds):
    log_q = logits - _logsumexp(logits, 1)  # (B, C), log q(y|x)
    return (np.exp(log_q) * (bounds - log_q)).sum(axis=1)  # sum_y q L + H(q), (B,)


def entropy_diag_forward(mu, log_var):
    return 0.5 * (LOG_2PI + 1.0 + log_var).sum(axis=1) + 0.0 * mu.sum(axis=1)  # (B,); no mu


def _lower_with_positive_diagonal(rng, b, d, low=0.5, high=1.5):
    """Cholesky factors (b, d, d): random entries below the diagonal, zeros above, diagonal in
    [low, high] (far enough from 0 that log L_dd has no trouble within eps of it)."""
    L = np.tril(rng.standard_normal((b, d, d)), -1)
    idx = np.arange(d)
    L[:, idx, idx] = rng.uniform(low, high, (b, d))
    return L


# ----------------------------------------------------------------------------- the exercises

_NETWORKS = (
    "PGM Lecture 30, slides 'Autoencoders' and 'VAE Cost function': the networks "
    "z = f_phi(x), y = g_theta(z); Understanding Deep Learning, ch. 17, "
    "'Nonlinear latent variable model [1]'"
)

GRADIENTS = (
    GradientExercise(
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
    GradientExercise(
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
    GradientExercise(
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
    GradientExercise(
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
    GradientExercise(
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
    GradientExercise(
        name="sum_axis",
        title="sum over an axis: dL/dx",
        math="y = x.sum(axis=1), for x (B, K, D)",
        lecture="Computational Intelligence Lab, Series 9, Problem 1.7: the sum over latent "
        "dimensions j = 1..J; "
        "losses are sums over dimensions per example",
        forward=sum_axis_forward,
        make_inputs=lambda rng: (rng.standard_normal((2, 3, 4)),),
        inputs=("x",),
        grads=("x",),
        shapes="x (B, K, D) = (2, 3, 4); y and grad_out (B, D) = (2, 4)",
        hint="every x[b, k, d] adds into y[b, d] with weight 1: put the summed axis back "
        "(np.expand_dims) and copy grad_out along it (np.broadcast_to or np.repeat).",
    ),
    GradientExercise(
        name="bernoulli_log_prob",
        title="Bernoulli log-likelihood from logits: dL/dlogits",
        math="log p(x | l) = x * l - softplus(l), elementwise, x in [0, 1]",
        lecture="Computational Intelligence Lab, Series 9, Problem 1: the reconstruction term "
        "E_z[log p_theta(x | z)] of the ELBO, for a Bernoulli decoder",
        forward=bernoulli_log_prob_forward,
        make_inputs=lambda rng: (2.0 * rng.standard_normal((3, 4)), rng.uniform(0.0, 1.0, (3, 4))),
        inputs=("logits", "x"),
        grads=("logits",),
        shapes="logits, x, output, grad_out (3, 4); x is data and gets no gradient",
        hint="use your softplus derivative; the answer is a difference of two terms with a "
        "meaning (data minus prediction).",
    ),
    GradientExercise(
        name="gaussian_log_prob",
        title="Gaussian log-likelihood: dL/dmean, dL/dlog_var",
        math="log N(x | m, e^v) = -(log 2pi + v + (x - m)^2 e^(-v)) / 2, elementwise "
        "(v = log variance)",
        lecture="PGM Lecture 30, 'Variational Inference View': x ~ N(g_theta(z), sigma_y^2 I); "
        "Understanding Deep Learning, ch. 17, eq. 17.7",
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
    GradientExercise(
        name="reparameterize",
        title="reparameterization trick: dL/dmu, dL/dlog_var",
        math="z = mu + exp(log_var / 2) * eps, elementwise (eps ~ N(0, I) is fixed noise)",
        lecture="PGM Lecture 30, 'Reparameterization Trick': "
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
    GradientExercise(
        name="kl_normal_std",
        title="analytic KL to N(0, I): dKL/dmu, dKL/dlog_var",
        math="KL = 1/2 sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2), sigma^2 = exp(log_var), "
        "summed over the latent axis",
        lecture="Computational Intelligence Lab, Series 9, Problem 1.7: "
        "-D_KL = 1/2 sum_j (1 + log sigma_j^2 - mu_j^2 "
        "- sigma_j^2)",
        forward=kl_normal_std_forward,
        make_inputs=lambda rng: (rng.standard_normal((3, 4)), rng.uniform(-1.0, 1.0, (3, 4))),
        inputs=("mu", "log_var"),
        grads=("mu", "log_var"),
        shapes="mu, log_var (B, L) = (3, 4); KL and grad_out (B,) = (3,)",
        hint="differentiate with respect to log_var, not sigma (sigma^2 = e^log_var). "
        "grad_out has one entry per example: give it back its latent axis before multiplying.",
    ),
    GradientExercise(
        name="logsumexp",
        title="log-sum-exp: dL/dx",
        math="y_b = log sum_k exp(x_bk), over axis 1",
        lecture="Understanding Deep Learning, ch. 17, 'VAE applications [1]': importance sampling, "
        "log p(x) ~ logsumexp_k(log w_k) - log K",
        forward=logsumexp_forward,
        make_inputs=lambda rng: (3.0 * rng.standard_normal((3, 5)),),
        inputs=("x",),
        grads=("x",),
        shapes="x (B, K) = (3, 5); y and grad_out (B,) = (3,)",
        hint="dy_b/dx_bk is a famous normalized function of x; compute it stably "
        "(subtract the row max, or use y itself).",
    ),
    GradientExercise(
        name="importance_weights",
        title="normalized importance weights: dL/dlog_w",
        math="w_bk = exp(log_w_bk) / sum_j exp(log_w_bj) = softmax(log_w) over axis 1",
        lecture="Understanding Deep Learning, ch. 17, 'VAE applications [1]': importance "
        "sampling weights the samples",
        forward=importance_weights_forward,
        make_inputs=lambda rng: (2.0 * rng.standard_normal((2, 5)),),
        inputs=("log_w",),
        grads=("log_w",),
        shapes="log_w, w, grad_out (B, K) = (2, 5)",
        hint="derive dw_i/dlog_w_j in two cases (i = j and i != j), write it with w alone, "
        "then apply it to grad_out along each row without building the (K, K) matrix.",
    ),
    GradientExercise(
        name="cross_entropy",
        title="softmax cross-entropy from logits: dL/dlogits",
        math="loss_b = -log softmax(logits_b)[y_b] = logsumexp(logits_b) - logits_b[y_b]",
        lecture="VAE Extensions slides, 'Overall training objective': the classification term "
        "that trains "
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
    GradientExercise(
        name="entropy",
        title="entropy of q(y|x) in the M2 unlabelled bound: dH/dlogits",
        math="H_b = -sum_y q_by log q_by with q = softmax(logits) over axis 1",
        lecture="VAE Extensions slides, 'What does the training objective look like?' "
        "(semi-supervised VAE): "
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
    GradientExercise(
        name="kl_diag",
        title="KL between two diagonal Gaussians: dKL/d of all four parameters",
        math="KL(q || p) = 1/2 sum_j (v_p - v_q + (e^v_q + (m_q - m_p)^2) e^(-v_p) - 1), with "
        "v = log sigma^2, summed over the latent axis",
        lecture="Computational Intelligence Lab, Series 9, Problem 1.7 (the same two integrals "
        "with a prior N(m_p, e^v_p) in place of N(0, I)); the blog post 'Variational "
        "Autoencoders' (2018): 'the KL divergence between two Gaussians' has a closed form",
        forward=kl_diag_forward,
        make_inputs=lambda rng: (
            rng.standard_normal((3, 2)),
            rng.uniform(-1.0, 1.0, (3, 2)),
            rng.standard_normal((3, 2)),
            rng.uniform(-1.0, 1.0, (3, 2)),
        ),
        inputs=("mu_q", "log_var_q", "mu_p", "log_var_p"),
        grads=("mu_q", "log_var_q", "mu_p", "log_var_p"),
        shapes="mu_q, log_var_q, mu_p, log_var_p (B, J) = (3, 2); KL and grad_out (B,) = (3,)",
        hint="differentiate one term of the sum; d/dv e^(-v) = -e^(-v). The two means enter "
        "only through their difference, so their gradients are opposite. With m_p = 0 and "
        "v_p = 0 you must get back exercise kl_normal_std.",
    ),
    GradientExercise(
        name="reparameterize_full",
        title="full-covariance reparameterization z = mu + L eps: dL/dmu, dL/dL",
        math="z_b = mu_b + L_b eps_b with L_b lower-triangular (Sigma = L L^T); only the lower "
        "triangle of L is read (NumPy: mu + (np.tril(L) @ eps[:, :, None])[:, :, 0])",
        lecture="the blog post 'Variational Autoencoders' (2018), the reparameterization trick: "
        "z = mu + L eps with Sigma = L L^T; Understanding Deep Learning, ch. 17, eq. 17.25 "
        "(z = mu + Sigma^(1/2) eps); Computational Intelligence Lab, Series 9, Problem 2.4 "
        "(a full covariance costs O(D^2) parameters)",
        forward=reparameterize_full_forward,
        make_inputs=lambda rng: (
            rng.standard_normal((2, 3)),
            _lower_with_positive_diagonal(rng, 2, 3),
            rng.standard_normal((2, 3)),
        ),
        inputs=("mu", "L", "eps"),
        grads=("mu", "L"),
        shapes="mu, eps, z, grad_out (B, D) = (2, 3); L (B, D, D) = (2, 3, 3), zeros above the "
        "diagonal; eps is noise and gets no gradient",
        hint="write z_bi = mu_bi + sum_j L_bij eps_bj and differentiate by L_bij: an outer "
        "product of grad_out and eps per example. The forward never reads the entries above "
        "the diagonal, so their gradient is 0 (np.tril).",
    ),
    GradientExercise(
        name="kl_full",
        title="KL of N(mu, L L^T) to N(0, I): dKL/dmu, dKL/dL",
        math="KL = 1/2 (tr(L L^T) + mu^T mu - D - log det(L L^T)), log det(L L^T) = "
        "2 sum_d log L_dd for a triangular L; only the lower triangle of L is read",
        lecture="Computational Intelligence Lab, Series 9, Problem 1.7 (its derivation starts "
        "from N(z; mu, Sigma) with a general Sigma); the blog post 'Variational Autoencoders' "
        "(2018): Sigma = L L^T",
        forward=kl_full_forward,
        make_inputs=lambda rng: (
            rng.standard_normal((2, 3)),
            _lower_with_positive_diagonal(rng, 2, 3),
        ),
        inputs=("mu", "L"),
        grads=("mu", "L"),
        shapes="mu (B, D) = (2, 3), L (B, D, D) = (2, 3, 3) with a positive diagonal and zeros "
        "above it; KL and grad_out (B,) = (2,)",
        hint="tr(L L^T) is the sum of the squares of L's entries; only the diagonal entries "
        "appear in the log-determinant. Entries above the diagonal get gradient 0.",
    ),
    GradientExercise(
        name="m2_unlabelled_bound",
        title="M2's unlabelled bound U(x): dU/dlogits, dU/dbounds",
        math="U_b = sum_y q_by L_by + H(q_b), q = softmax(logits) over axis 1, "
        "H(q_b) = -sum_y q_by log q_by; L(x, y) is the labelled bound of each class (a bound "
        "to maximise, as in minivae)",
        lecture="VAE Extensions slides, 'What does the training objective look like?' "
        "(semi-supervised VAE, the unlabelled bound); Kingma et al. 2014, eq. 7 (which "
        "writes the negatives: -U(x) = sum_y q(y|x)(-L(x, y)) + H(q(y|x)))",
        forward=m2_unlabelled_bound_forward,
        make_inputs=lambda rng: (
            1.5 * rng.standard_normal((3, 4)),
            rng.uniform(-110.0, -90.0, (3, 4)),
        ),
        inputs=("logits", "bounds"),
        grads=("logits", "bounds"),
        shapes="logits, bounds (B, C) = (3, 4); U and grad_out (B,) = (3,)",
        hint="dU/dbounds is q itself. For the logits, first dU/dq_y = L_y - log q_y - 1, then "
        "the softmax Jacobian (exercises importance_weights and entropy); the constant "
        "drops out because sum_y q_y = 1.",
    ),
    GradientExercise(
        name="entropy_diag",
        title="entropy of a diagonal Gaussian: dH/dmu, dH/dlog_var",
        math="H(N(mu, diag e^v)) = 1/2 sum_j (log 2pi + 1 + v_j), v = log sigma^2, summed "
        "over the last axis",
        lecture="Computational Intelligence Lab, Series 9, Problem 1.7 (the integral "
        "int q log q = -J/2 log 2pi - 1/2 sum_j (log sigma_j^2 + 1)); lesson 07 adds H(q(y|x)) "
        "to the unlabelled bound U(x)",
        forward=entropy_diag_forward,
        make_inputs=lambda rng: (rng.standard_normal((3, 2)), rng.uniform(-1.0, 1.0, (3, 2))),
        inputs=("mu", "log_var"),
        grads=("mu", "log_var"),
        shapes="mu, log_var (B, J) = (3, 2); H and grad_out (B,) = (3,)",
        hint="look at which parameters H depends on at all; a gradient that is zero is still "
        "an array of its input's shape.",
    ),
)
