"""The value exercises: the learner computes a quantity of the lectures, minivae checks the number.

Each ``ValueExercise`` names the learner's function (``name``), its inputs and its
outputs, makes fixed input cases from a NumPy Generator, and computes the
expected outputs with minivae's own functions (``minivae.distributions``,
``minivae.ops``, the engine's backward), in float64: the **oracle**. Where minivae
has no function for a quantity (the score-function toy, the Gaussian decoder's
alpha), the oracle says which part is a float64 formula. The learner writes

    <name>(*inputs) -> outputs      (one array, or a tuple of them in the order of ``outputs``)

in NumPy. A wrong number is reported with the output and the element that differ,
expected against got, a pattern (a constant factor, a constant offset, a flipped
sign), and, when the answer equals a known mistake of ``mistakes``, what that
mistake is. Some exercises add a ``summary``: a check that runs once the values
match (the IWAE bound rising with K, both gradient estimators being unbiased) and
whose table is printed with the result.

Sign convention of M2 (exercises m2_unlabelled_bound, m2_optimal_q): as in
minivae.models.m2, L(x, y) and U(x) are bounds, to MAXIMISE:
    U(x) = sum_y q(y|x) L(x, y) + H(q(y|x)).
Kingma et al. 2014 and the VAE Extensions slides name the negatives L and U
(losses to minimise): -U(x) = sum_y q(y|x)(-L(x, y)) + H(q(y|x)). Same bound.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from minivae import ops
from minivae.backend import LOG_2PI, np
from minivae.distributions import (
    DiagonalGaussian,
    bernoulli_log_likelihood,
    gaussian_log_likelihood,
    log_mean_exp,
    standard_normal_log_prob,
)
from minivae.tensor import Tensor


@dataclass(frozen=True)
class Mistake:
    """A wrong answer learners give, and what to tell them when theirs equals it."""

    clue: str  # what was probably done, and what to change
    answer: Callable  # the wrong computation, with the signature of the learner's function


@dataclass(frozen=True)
class ValueExercise:
    """One quantity: the learner writes ``<name>(*inputs)``, checked against minivae's value."""

    name: str  # the learner's function
    title: str  # what is computed, in words
    math: str  # the formula, one line
    lecture: str  # the lecture notes' title and section
    inputs: tuple  # the names of the function's inputs, in order
    outputs: tuple  # the names of what it returns, in order
    make_cases: Callable  # rng -> list of (label, inputs): fixed inputs, one or more cases
    oracle: Callable  # (*inputs) -> tuple of expected float64 arrays, one per output
    oracle_name: str  # where the expected numbers come from, for the messages
    shapes: str  # the shapes of the cases, in words
    hint: str  # what to use, without giving the answer away
    mistakes: tuple = ()  # known wrong answers and their clues
    nonfinite: str = ""  # what a NaN or Inf in the answer usually means here
    summary: Callable | None = None  # (cases, expected) -> (ok, text), run once values match
    rtol: float = 1e-7
    atol: float = 1e-9

    kind = "value"

    @property
    def answer_name(self) -> str:
        return self.name

    @property
    def arguments(self) -> tuple:
        return self.inputs

    @property
    def returns(self) -> str:
        return ", ".join(self.outputs)


# ----------------------------------------------------------------------------- helpers


def _t(a) -> Tensor:
    return Tensor(np.asarray(a, dtype=np.float64))


def _np(t) -> np.ndarray:
    return np.asarray(t.data, dtype=np.float64)


def _softplus(a):
    return np.logaddexp(0.0, a)


def _logsumexp(a, axis):
    m = a.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(a - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def _gauss(rng, shape, scale=1.0):
    return scale * rng.standard_normal(shape)


# A toy VAE: encoder outputs mu, log_var (B, J) are given; the decoder is one linear map
# logits = z W + b (J -> D) with a Bernoulli likelihood, the same for every ELBO exercise.


def _vae_case(rng, b, j, d, samples=None, w_scale=1.5):
    """x (B, D) in {0, 1}, mu, log_var (B, J), eps (B, J) or (samples, B, J), W (J, D), b (D,)."""
    x = (rng.uniform(size=(b, d)) < 0.5).astype(np.float64)
    mu = _gauss(rng, (b, j))
    log_var = rng.uniform(-1.5, 0.5, (b, j))
    eps = _gauss(rng, (b, j) if samples is None else (samples, b, j))
    W = _gauss(rng, (j, d), w_scale)
    bias = _gauss(rng, (d,), 0.5)
    return x, mu, log_var, eps, W, bias


def _vae_terms(x, mu, log_var, eps, W, b):
    """minivae's terms: q, z, log p(x|z) (..., B), log p(z), log q(z|x) (..., B)."""
    q = DiagonalGaussian(_t(mu), _t(log_var))
    z = q.sample(eps=_t(eps))  # (B, J) or (K, B, J): z = mu + sigma eps
    logits = ops.matmul(z, _t(W)) + _t(b)  # (..., B, D)
    log_px_z = bernoulli_log_likelihood(logits, _t(x))  # (..., B), summed over pixels
    return q, z, log_px_z, standard_normal_log_prob(z), q.log_prob(z)


def _np_recon(x, z, W, b):
    """log p(x | z) for the toy decoder, summed over pixels, in plain NumPy."""
    logits = z @ W + b
    return (x * logits - _softplus(logits)).sum(axis=-1)


def _np_kl_std(mu, log_var):
    return 0.5 * (mu**2 + np.exp(log_var) - 1.0 - log_var).sum(axis=-1)


def _np_log_normal(z, mean, log_var):
    return -0.5 * (LOG_2PI + log_var + (z - mean) ** 2 * np.exp(-log_var))


def _np_log_weights(x, mu, log_var, eps, W, b):
    z = mu + np.exp(0.5 * log_var) * eps
    log_pz = _np_log_normal(z, 0.0, 0.0).sum(axis=-1)
    log_qz = _np_log_normal(z, mu, log_var).sum(axis=-1)
    return _np_recon(x, z, W, b), log_pz, log_qz


# ----------------------------------------------------------------------------- ELBO (lesson 02)


def _elbo_bernoulli_oracle(x, mu, log_var, eps, W, b):
    q, _, log_px_z, _, _ = _vae_terms(x, mu, log_var, eps, W, b)
    return (_np(log_px_z - q.kl_to_standard()),)


def _elbo_bernoulli_mistakes():
    def recon_only(x, mu, log_var, eps, W, b):
        return _np_recon(x, mu + np.exp(0.5 * log_var) * eps, W, b)

    def kl_added(x, mu, log_var, eps, W, b):
        return recon_only(x, mu, log_var, eps, W, b) + _np_kl_std(mu, log_var)

    def sigma_is_var(x, mu, log_var, eps, W, b):
        return _np_recon(x, mu + np.exp(log_var) * eps, W, b) - _np_kl_std(mu, log_var)

    def means(x, mu, log_var, eps, W, b):
        z = mu + np.exp(0.5 * log_var) * eps
        logits = z @ W + b
        recon = (x * logits - _softplus(logits)).mean(axis=-1)
        return recon - 0.5 * (mu**2 + np.exp(log_var) - 1.0 - log_var).mean(axis=-1)

    return (
        Mistake(
            "the reconstruction term alone: the KL term is missing "
            "(ELBO = log p(x|z) - KL(q(z|x) || p(z)))",
            recon_only,
        ),
        Mistake(
            "the KL added instead of subtracted: the ELBO pays the KL, ELBO = log p(x|z) - KL",
            kl_added,
        ),
        Mistake(
            "sigma = exp(log_var) used in z = mu + sigma eps; log_var is log sigma^2, so "
            "sigma = exp(log_var / 2)",
            sigma_is_var,
        ),
        Mistake(
            "means over pixels and latent units instead of sums: each term of the ELBO is "
            "a sum per example (and a mean over pixels beside a sum over latents would "
            "hide a beta)",
            means,
        ),
    )


ELBO_BERNOULLI = ValueExercise(
    name="elbo_bernoulli",
    title="the single-sample ELBO of a Bernoulli VAE",
    math="z = mu + exp(log_var / 2) eps, logits = z W + b, ELBO = sum_d [x_d l_d - softplus(l_d)] "
    "- 1/2 sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2), per example",
    lecture="Understanding Deep Learning, ch. 17, eq. 17.23 (the ELBO with one sample z*); "
    "PGM Lecture 30, 'Variational Inference View' (E_q[log p(x|z)] - KL(q(z|x) || p(z)), one "
    "sample approximation); Computational Intelligence Lab, Series 9, Problem 1.7 (the KL)",
    inputs=("x", "mu", "log_var", "eps", "W", "b"),
    outputs=("elbo",),
    make_cases=lambda rng: [
        ("B = 3 examples, J = 2 latent units, D = 6 pixels", _vae_case(rng, 3, 2, 6))
    ],
    oracle=_elbo_bernoulli_oracle,
    oracle_name="minivae: DiagonalGaussian.sample, bernoulli_log_likelihood, kl_to_standard",
    shapes="x (B, D) = (3, 6) in {0, 1}; mu, log_var, eps (B, J) = (3, 2); W (J, D) = (2, 6), "
    "b (D,) = (6,); elbo (B,) = (3,)",
    hint="three steps: the reparameterized z, the decoder's logits and the Bernoulli "
    "log-likelihood from logits (exercise bernoulli_log_prob; np.logaddexp(0, l) is a stable "
    "softplus), the closed-form KL (exercise kl_normal_std). Sum over pixels and over latent "
    "units, one number per example.",
    mistakes=_elbo_bernoulli_mistakes(),
)


def _elbo_samples_oracle(x, mu, log_var, eps, W, b):
    _, _, log_px_z, log_pz, log_qz = _vae_terms(x, mu, log_var, eps, W, b)
    return (_np((log_px_z + log_pz - log_qz).mean(axis=0)),)


def _elbo_samples_mistakes():
    def closed_form_kl(x, mu, log_var, eps, W, b):
        recon, _, _ = _np_log_weights(x, mu, log_var, eps, W, b)
        return recon.mean(axis=0) - _np_kl_std(mu, log_var)

    def summed(x, mu, log_var, eps, W, b):
        recon, log_pz, log_qz = _np_log_weights(x, mu, log_var, eps, W, b)
        return (recon + log_pz - log_qz).sum(axis=0)

    def recon_only(x, mu, log_var, eps, W, b):
        return _np_log_weights(x, mu, log_var, eps, W, b)[0].mean(axis=0)

    return (
        Mistake(
            "the closed-form KL: E[log p(x|z)] - KL is a valid estimator too, but this "
            "exercise asks for Problem 1.4's form, with log p(z) - log q(z|x) averaged "
            "over the same L samples",
            closed_form_kl,
        ),
        Mistake("a sum over the L samples instead of their mean (1/L sum_l)", summed),
        Mistake(
            "log p(x|z) alone: log p(z) - log q(z|x) (the Monte-Carlo KL) is missing; "
            "log p(x, z) = log p(x|z) + log p(z)",
            recon_only,
        ),
    )


ELBO_SAMPLES = ValueExercise(
    name="elbo_samples",
    title="the L-sample ELBO estimate, all terms by Monte Carlo",
    math="z_l = mu + sigma eps_l, ELBO ~ 1/L sum_l [log p(x | z_l) + log p(z_l) - log q(z_l | x)], "
    "p(z) = N(0, I), q(z|x) = N(mu, diag sigma^2), per example",
    lecture="Computational Intelligence Lab, Series 9, Problem 1.4 (ELBO ~ 1/L sum_l "
    "[log p(x, z^(l)) - log q(z^(l) | x)])",
    inputs=("x", "mu", "log_var", "eps", "W", "b"),
    outputs=("elbo",),
    make_cases=lambda rng: [
        (
            "L = 4 samples, B = 3 examples, J = 2 latent units, D = 6 pixels",
            _vae_case(rng, 3, 2, 6, samples=4),
        )
    ],
    oracle=_elbo_samples_oracle,
    oracle_name="minivae: DiagonalGaussian.sample and log_prob, standard_normal_log_prob, "
    "bernoulli_log_likelihood",
    shapes="x (B, D) = (3, 6); mu, log_var (B, J) = (3, 2); eps (L, B, J) = (4, 3, 2); W (J, D), "
    "b (D,) as in elbo_bernoulli; elbo (B,) = (3,)",
    hint="mu (B, J) broadcasts against eps (L, B, J); z (L, B, J) @ W gives logits (L, B, D). "
    "A diagonal Gaussian's log-density is a sum over its units of "
    "-1/2 (log 2pi + log sigma^2 + (z - mu)^2 / sigma^2). Average over axis 0 last.",
    mistakes=_elbo_samples_mistakes(),
)


# ----------------------------------------------------------------------------- KLs and entropy


def _kl_diag_case(rng):
    return (
        _gauss(rng, (3, 4)),
        rng.uniform(-1.5, 1.0, (3, 4)),
        _gauss(rng, (3, 4)),
        rng.uniform(-1.0, 1.0, (3, 4)),
    )


def _np_kl_diag(mq, vq, mp, vp):
    return 0.5 * (vp - vq + (np.exp(vq) + (mq - mp) ** 2) * np.exp(-vp) - 1.0).sum(axis=-1)


KL_DIAG = ValueExercise(
    name="kl_diag",
    title="the KL between two diagonal Gaussians, in closed form",
    math="KL(N(m_q, e^v_q) || N(m_p, e^v_p)) = 1/2 sum_j (v_p - v_q + (e^v_q + (m_q - m_p)^2) "
    "e^(-v_p) - 1), v = log sigma^2, per example",
    lecture="Computational Intelligence Lab, Series 9, Problem 1.7 (the same two integrals with "
    "a prior N(m_p, e^v_p) in place of N(0, I)); the blog post 'Variational Autoencoders' "
    "(2018): 'the KL divergence between two Gaussians' has a closed form",
    inputs=("mu_q", "log_var_q", "mu_p", "log_var_p"),
    outputs=("kl",),
    make_cases=lambda rng: [("B = 3 examples, J = 4 latent units", _kl_diag_case(rng))],
    oracle=lambda mq, vq, mp, vp: (_np(ops.kl_normal_normal(_t(mq), _t(vq), _t(mp), _t(vp))),),
    oracle_name="minivae.ops.kl_normal_normal",
    shapes="mu_q, log_var_q, mu_p, log_var_p (B, J) = (3, 4); kl (B,) = (3,)",
    hint="KL(q || p) = E_q[log q(z)] - E_q[log p(z)], one latent unit at a time: "
    "E_q[(z - m_p)^2] = sigma_q^2 + (m_q - m_p)^2. Then sum over units.",
    mistakes=(
        Mistake(
            "KL(p || q) in place of KL(q || p): the KL is not symmetric; the expectation is "
            "under q, the first argument",
            lambda mq, vq, mp, vp: _np_kl_diag(mp, vp, mq, vq),
        ),
        Mistake(
            "the 1/2 in front of the sum is missing",
            lambda mq, vq, mp, vp: 2.0 * _np_kl_diag(mq, vq, mp, vp),
        ),
        Mistake(
            "log_var read as log sigma (a variance of exp(2 log_var)); log_var is "
            "log sigma^2, so sigma^2 = exp(log_var)",
            lambda mq, vq, mp, vp: _np_kl_diag(mq, 2.0 * vq, mp, 2.0 * vp),
        ),
    ),
)


def _kl_full_case(rng):
    L = np.tril(_gauss(rng, (2, 3, 3)), -1)
    idx = np.arange(3)
    L[:, idx, idx] = rng.uniform(0.3, 1.8, (2, 3))
    return _gauss(rng, (2, 3)), L


def _np_kl_full(mu, L, log_det_factor=2.0, trace=None):
    d = L.shape[-1]
    diag = np.diagonal(L, axis1=-2, axis2=-1)
    tr = (L**2).sum(axis=(-2, -1)) if trace is None else trace
    return 0.5 * (tr + (mu**2).sum(axis=-1) - d - log_det_factor * np.log(diag).sum(axis=-1))


KL_FULL = ValueExercise(
    name="kl_full",
    title="the KL of a full-covariance Gaussian N(mu, L L^T) to N(0, I)",
    math="KL = 1/2 (tr(Sigma) + mu^T mu - D - log det Sigma), Sigma = L L^T, L lower-triangular "
    "with a positive diagonal, per example",
    lecture="Computational Intelligence Lab, Series 9, Problem 1.7 (the derivation starts from "
    "N(z; mu, Sigma) with a general Sigma); the blog post 'Variational Autoencoders' (2018): "
    "z = mu + L eps with Sigma = L L^T",
    inputs=("mu", "L"),
    outputs=("kl",),
    make_cases=lambda rng: [("B = 2 examples, D = 3 latent units", _kl_full_case(rng))],
    oracle=lambda mu, L: (_np(ops.kl_full_std(_t(mu), _t(L))),),
    oracle_name="minivae.ops.kl_full_std",
    shapes="mu (B, D) = (2, 3); L (B, D, D) = (2, 3, 3), zeros above the diagonal; kl (B,) = (2,)",
    hint="no matrix inverse or determinant routine is needed: tr(L L^T) is the sum of the "
    "squares of L's entries, and the determinant of a triangular matrix is the product of "
    "its diagonal.",
    mistakes=(
        Mistake(
            "log det(L L^T) taken as sum_d log L_dd: det(L L^T) = det(L)^2, so the "
            "log-determinant is 2 sum_d log L_dd",
            lambda mu, L: _np_kl_full(mu, L, log_det_factor=1.0),
        ),
        Mistake(
            "tr(L) in place of tr(Sigma) = tr(L L^T)",
            lambda mu, L: _np_kl_full(mu, L, trace=np.trace(L, axis1=-2, axis2=-1)),
        ),
        Mistake(
            "tr(L L^T) from the diagonal of L alone: tr(L L^T) = sum_ij L_ij^2, the "
            "entries below the diagonal count too",
            lambda mu, L: _np_kl_full(
                mu, L, trace=(np.diagonal(L, axis1=-2, axis2=-1) ** 2).sum(axis=-1)
            ),
        ),
    ),
)


def _np_entropy(log_var):
    return 0.5 * (LOG_2PI + 1.0 + log_var).sum(axis=-1)


ENTROPY_DIAG = ValueExercise(
    name="entropy_diag",
    title="the entropy of a diagonal Gaussian",
    math="H(N(mu, diag sigma^2)) = -E_q[log q(z)] = 1/2 sum_j (log 2pi + 1 + log sigma_j^2), "
    "per example",
    lecture="Computational Intelligence Lab, Series 9, Problem 1.7 (the first integral, "
    "int q log q = -J/2 log 2pi - 1/2 sum_j (log sigma_j^2 + 1)); lesson 07 adds H(q(y|x)) "
    "to its unlabelled bound",
    inputs=("mu", "log_var"),
    outputs=("entropy",),
    make_cases=lambda rng: [
        ("B = 3 examples, J = 4 units", (_gauss(rng, (3, 4)), rng.uniform(-2.0, 1.0, (3, 4))))
    ],
    oracle=lambda mu, log_var: (_np(DiagonalGaussian(_t(mu), _t(log_var)).entropy()),),
    oracle_name="minivae.distributions.DiagonalGaussian.entropy",
    shapes="mu, log_var (B, J) = (3, 4); entropy (B,) = (3,)",
    hint="-log q(z) = 1/2 (log 2pi + log sigma^2 + (z - mu)^2 / sigma^2) per unit; take its "
    "expectation under q: E[(z - mu)^2] = sigma^2.",
    mistakes=(
        Mistake(
            "log sigma where log sigma^2 belongs: log_var already is log sigma^2",
            lambda mu, v: 0.5 * (LOG_2PI + 1.0 + 0.5 * v).sum(axis=-1),
        ),
        Mistake(
            "the +1 is missing: E_q[(z - mu)^2 / sigma^2] = 1 per unit, it does not vanish",
            lambda mu, v: 0.5 * (LOG_2PI + v).sum(axis=-1),
        ),
    ),
)


# ----------------------------------------------------------------------------- the Gaussian decoder


def _alpha_oracle(sigma, d):
    """alpha and const such that -log N(x | g, sigma^2 I) = alpha |x - g|^2 + const, read off
    minivae's gaussian_log_likelihood at two (x, g) pairs (two equations, two unknowns)."""
    rng = np.random.default_rng(d)
    x = rng.standard_normal((2, d))
    g = x + np.array([[0.5], [2.0]]) * rng.standard_normal((2, d))  # two different distances
    log_var = Tensor(np.asarray(2.0 * math.log(sigma)))  # one sigma shared by all pixels
    nll = -_np(gaussian_log_likelihood(_t(x), _t(g), log_var))  # (2,)
    sq = ((x - g) ** 2).sum(axis=1)  # (2,)
    alpha = (nll[1] - nll[0]) / (sq[1] - sq[0])
    return np.float64(alpha), np.float64(nll[0] - alpha * sq[0])


GAUSSIAN_DECODER_ALPHA = ValueExercise(
    name="gaussian_decoder_alpha",
    title="the weight alpha of the squared error for a Gaussian decoder",
    math="-log N(x | g(z), sigma^2 I) = alpha |x - g(z)|^2 + const for x of D pixels: "
    "return alpha and const",
    lecture="PGM Lecture 30, 'VAE Cost function' (C = sum_i alpha |g(z) - x_i|^2 + KL) and "
    "'Variational Inference View' (p(x|z) = N(x; g(z), sigma_g^2 I)); Understanding Deep "
    "Learning, ch. 17, eq. 17.7",
    inputs=("sigma", "d"),
    outputs=("alpha", "const"),
    make_cases=lambda rng: [
        (f"sigma = {s}, D = {d}", (s, d)) for s, d in ((0.1, 784), (0.5, 10), (1.0, 3), (2.0, 50))
    ],
    oracle=_alpha_oracle,
    oracle_name="minivae.distributions.gaussian_log_likelihood (alpha and const read off "
    "its values at two pairs (x, g))",
    shapes="sigma a positive float, d an int (the number of pixels); alpha and const floats",
    hint="write the D-dimensional density with covariance sigma^2 I: its normaliser is "
    "(2 pi sigma^2)^(-D/2), and its exponent -|x - g|^2 / (2 sigma^2). Take -log.",
    mistakes=(
        Mistake(
            "alpha = 1 / sigma^2: the exponent of a Gaussian is -|x - g|^2 / (2 sigma^2)",
            lambda s, d: (1.0 / s**2, 0.5 * d * math.log(2 * math.pi * s**2)),
        ),
        Mistake(
            "alpha = 1 / (2 sigma): sigma where sigma^2 belongs",
            lambda s, d: (0.5 / s, 0.5 * d * math.log(2 * math.pi * s**2)),
        ),
        Mistake(
            "const = D/2 log 2pi: the log sigma^2 of the normaliser is missing (it does not "
            "matter for a fixed sigma, but it does for the likelihood's value)",
            lambda s, d: (0.5 / s**2, 0.5 * d * math.log(2 * math.pi)),
        ),
        Mistake(
            "const = 1/2 log(2 pi sigma^2): the normaliser of D independent pixels is the "
            "product of D of them, so the constant is D times that",
            lambda s, d: (0.5 / s**2, 0.5 * math.log(2 * math.pi * s**2)),
        ),
    ),
)


# ----------------------------------------------------------------------------- importance sampling


def _log_px_case(rng):
    # D = 1000 pixels and a strong decoder put every log-weight below -900 nats: exp(log w)
    # underflows to 0 in float64 (below about -745), so only a stable computation survives
    return _vae_case(rng, 3, 2, 1000, samples=8, w_scale=3.0)


def _log_px_oracle(x, mu, log_var, eps, W, b):
    _, _, log_px_z, log_pz, log_qz = _vae_terms(x, mu, log_var, eps, W, b)
    return (_np(log_mean_exp(log_px_z + log_pz - log_qz, axis=0)),)


def _log_px_mistakes():
    def log_w(x, mu, log_var, eps, W, b):
        recon, log_pz, log_qz = _np_log_weights(x, mu, log_var, eps, W, b)
        return recon + log_pz - log_qz

    return (
        Mistake(
            "the mean of the log-weights instead of the log of their mean: that is the "
            "K-sample ELBO (exercise elbo_samples), a looser bound",
            lambda *a: log_w(*a).mean(axis=0),
        ),
        Mistake(
            "the -log K is missing: log sum_k w_k is the log of the sum, K times the mean",
            lambda *a: _logsumexp(log_w(*a), 0),
        ),
        Mistake(
            "log w_k = log p(x|z_k) alone: the weight is p(x, z_k) / q(z_k|x), so "
            "log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x)",
            lambda *a: _logsumexp(_np_log_weights(*a)[0], 0) - math.log(a[3].shape[0]),
        ),
    )


LOG_PX_IMPORTANCE = ValueExercise(
    name="log_px_importance",
    title="the importance-sampled log p(x) with K samples, computed stably",
    math="log p(x) ~ log (1/K) sum_k w_k, log w_k = log p(x | z_k) + log p(z_k) - log q(z_k | x), "
    "z_k = mu + sigma eps_k, per example",
    lecture="Understanding Deep Learning, ch. 17, 'VAE applications [1]' (approximating sample "
    "probability by importance sampling); Burda et al. 2015 (the same average is the IWAE bound)",
    inputs=("x", "mu", "log_var", "eps", "W", "b"),
    outputs=("log_px",),
    make_cases=lambda rng: [
        (
            "K = 8 samples, B = 3 examples, J = 2 latent units, D = 1000 pixels "
            + "(log-weights from -3300 to -900)",
            _log_px_case(rng),
        )
    ],
    oracle=_log_px_oracle,
    oracle_name="minivae.distributions.log_mean_exp of the log-weights from "
    "DiagonalGaussian, standard_normal_log_prob and bernoulli_log_likelihood",
    shapes="x (B, D) = (3, 1000); mu, log_var (B, J) = (3, 2); eps (K, B, J) = (8, 3, 2); "
    "W (J, D), b (D,); log_px (B,) = (3,)",
    hint="first the log-weights (K, B), as in elbo_samples, then log-mean-exp over the K "
    "samples: take out the largest log-weight m, log mean_k e^(a_k) = m + log mean_k e^(a_k - m).",
    mistakes=_log_px_mistakes(),
    nonfinite="the log-weights here lie below -900 and exp(-900) is 0 in float64, so "
    "log(mean(exp)) gives -inf: subtract the largest log-weight before exp (log-sum-exp), add "
    "it back after.",
)


def _iwae_weights_oracle(log_w):
    t = Tensor(np.asarray(log_w, dtype=np.float64), requires_grad=True)
    bound = log_mean_exp(t, axis=0)  # (B,) the IWAE bound of each example
    bound.backward(np.ones(bound.shape))
    return (np.asarray(t.grad),)  # d bound / d log w_k: the normalized weights


def _np_softmax(a, axis):
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


IWAE_WEIGHTS = ValueExercise(
    name="iwae_weights",
    title="the IWAE bound's gradient weights w~_k",
    math="grad log (1/K) sum_k w_k = sum_k w~_k grad log w_k with w~_k = w_k / sum_j w_j: "
    "return w~ from the log-weights",
    lecture="Burda et al. 2015, eq. 14 (the IWAE gradient); Understanding Deep Learning, ch. "
    "17, 'VAE applications [1]' (importance sampling weights the samples)",
    inputs=("log_w",),
    outputs=("weights",),
    make_cases=lambda rng: [
        (
            "K = 6 samples, B = 3 examples, log-weights near -800",
            (-800.0 + 4.0 * rng.standard_normal((6, 3)),),
        )
    ],
    oracle=_iwae_weights_oracle,
    oracle_name="the gradient of minivae.distributions.log_mean_exp(log_w, axis=0), through "
    "the engine's backward",
    shapes="log_w (K, B) = (6, 3): samples on axis 0, examples on axis 1; weights (K, B), each "
    "column sums to 1",
    hint="differentiate log (1/K) sum_k e^(log w_k) by log w_k: the 1/K cancels. Compute it "
    "without ever forming e^(log w) itself.",
    mistakes=(
        Mistake(
            "normalized over the examples (axis 1) instead of over the K samples (axis 0)",
            lambda a: _np_softmax(a, 1),
        ),
        Mistake(
            "divided by K: the 1/K of the mean cancels in the derivative of the log, and "
            "the weights sum to 1",
            lambda a: _np_softmax(a, 0) / a.shape[0],
        ),
        Mistake(
            "not normalized: exp(log w - max) still has to be divided by its column's sum",
            lambda a: np.exp(a - a.max(axis=0, keepdims=True)),
        ),
    ),
    nonfinite="the log-weights are near -800 and exp(-800) is 0 in float64, so w / sum(w) is "
    "0 / 0 = NaN: subtract each column's largest log-weight first (the weights do not change).",
)


# A linear-Gaussian toy in the spirit of lesson 00's Part 4 (its own numbers): z ~ N(0, 1),
# x | z ~ N(z, sigma_x^2); p(x) and p(z|x) are exact.
TOY_X, TOY_SIGMA_X, TOY_Q_MEAN, TOY_Q_STD = 1.5, 0.6, 0.3, 0.4
TOY_KS = (1, 2, 5, 20, 100)
TOY_REPEATS = 4000


def _iwae_toy_cases(rng):
    eps = rng.standard_normal((TOY_REPEATS, max(TOY_KS)))  # the first K columns for each K
    return [
        (
            f"K = {k}, {TOY_REPEATS} independent estimates",
            (TOY_X, TOY_SIGMA_X, TOY_Q_MEAN, TOY_Q_STD, eps[:, :k].copy()),
        )
        for k in TOY_KS
    ]


def _toy_log_w(x, sigma_x, q_mean, q_std, eps):
    z = _t(q_mean + q_std * np.asarray(eps))  # (R, K)
    log_lik = ops.gaussian_log_prob(_t(x), z, _t(2.0 * math.log(sigma_x)))  # log N(x; z, sx^2)
    log_prior = ops.gaussian_log_prob(z, _t(0.0), _t(0.0))  # log N(z; 0, 1)
    log_q = ops.gaussian_log_prob(z, _t(q_mean), _t(2.0 * math.log(q_std)))
    return log_lik + log_prior - log_q  # (R, K)


def _toy_exact(x, sigma_x, q_mean, q_std):
    """log p(x) and the ELBO = log p(x) - KL(q || p(z|x)), both exact (minivae ops, float64)."""
    s2 = sigma_x**2
    log_px = float(_np(ops.gaussian_log_prob(_t(x), _t(0.0), _t(math.log(1.0 + s2)))))
    post_mean, post_var = x / (1.0 + s2), s2 / (1.0 + s2)  # p(z|x) of the linear-Gaussian toy
    kl = float(
        _np(
            ops.kl_normal_normal(
                _t([q_mean]), _t([2.0 * math.log(q_std)]), _t([post_mean]), _t([math.log(post_var)])
            )
        )
    )
    return log_px, log_px - kl


def _iwae_toy_summary(cases, expected):
    x, sigma_x, q_mean, q_std, _ = cases[0][1]
    log_px, elbo = _toy_exact(x, sigma_x, q_mean, q_std)
    means = [float(e[0].mean()) for e in expected]
    ses = [float(e[0].std(ddof=1) / math.sqrt(e[0].size)) for e in expected]
    lines = [
        f"  log p(x) = {log_px:.4f} (exact), "
        + f"ELBO = log p(x) - KL(q || p(z|x)) = {elbo:.4f} (exact)",
        "      K   mean bound +- s.e.   gap to log p(x)",
    ]
    for k, m, se in zip(TOY_KS, means, ses):
        lines.append(f"  {k:5d}   {m:9.4f} +- {se:.4f}   {log_px - m:8.4f}")
    problems = []
    if abs(means[0] - elbo) > 4 * ses[0]:
        problems.append(f"the K = 1 mean {means[0]:.4f} is not the ELBO {elbo:.4f}")
    for k0, k1, m0, m1 in zip(TOY_KS, TOY_KS[1:], means, means[1:]):
        if not m1 > m0:
            problems.append(f"the bound does not rise from K = {k0} to K = {k1}")
    if any(m > log_px + 4 * se for m, se in zip(means, ses)):
        problems.append("a mean bound lies above log p(x)")
    text = "\n".join(lines)
    if problems:
        return False, "the toy's bounds do not behave: " + "; ".join(problems) + "\n" + text
    return True, ("the bound rises with K from the ELBO towards log p(x):\n" + text)


IWAE_TOY = ValueExercise(
    name="iwae_toy",
    title="the IWAE bound on a toy with an exact log p(x), and how it rises with K",
    math="z ~ N(0, 1), x | z ~ N(z, sigma_x^2), q(z) = N(q_mean, q_std^2): "
    "bound = log (1/K) sum_k p(x, z_k) / q(z_k), z_k = q_mean + q_std eps_k, one per row of eps",
    lecture="Understanding Deep Learning, ch. 17, eq. 17.15 and 17.17 (Jensen's inequality; "
    "ELBO = log p(x) - KL(q || p(z|x))); Burda et al. 2015, Theorem 1 (the bound rises with K "
    "and tends to log p(x))",
    inputs=("x", "sigma_x", "q_mean", "q_std", "eps"),
    outputs=("bounds",),
    make_cases=_iwae_toy_cases,
    oracle=lambda x, sx, m, s, eps: (_np(log_mean_exp(_toy_log_w(x, sx, m, s, eps), axis=1)),),
    oracle_name="minivae.ops.gaussian_log_prob and minivae.distributions.log_mean_exp",
    shapes="x, sigma_x, q_mean, q_std floats; eps (R, K) = (4000, K) for K = 1, 2, 5, 20, 100; "
    "bounds (R,): one estimate per row",
    hint="log w = log N(x; z, sigma_x^2) + log N(z; 0, 1) - log N(z; q_mean, q_std^2), then the "
    "stable log-mean-exp over axis 1. The check then averages your R estimates for each K.",
    mistakes=(
        Mistake(
            "the mean of the log-weights: that is the ELBO's estimate for every K, whose mean "
            "does not rise with K; the IWAE bound is the log of the mean weight",
            lambda x, sx, m, s, eps: _np(_toy_log_w(x, sx, m, s, eps)).mean(axis=1),
        ),
        Mistake(
            "the -log K is missing: log sum_k w_k is the log of the sum, K times the mean",
            lambda x, sx, m, s, eps: _logsumexp(_np(_toy_log_w(x, sx, m, s, eps)), 1),
        ),
    ),
    summary=_iwae_toy_summary,
)


# ----------------------------------------------------------------------------- score function

# Lesson 00, part 6: x ~ q_phi = N(phi^3, e^(2 phi)), f(x) = x^2 + sin x, the gradient of
# E_q[f(x)] with respect to phi, from single samples x = phi^3 + e^phi eps.
SCORE_PHI = 0.5
SCORE_BIG_N = 200_000


def _score_cases(rng):
    return [
        ("phi = 0.5, 8 samples", (SCORE_PHI, rng.standard_normal(8))),
        (f"phi = 0.5, {SCORE_BIG_N:,} samples", (SCORE_PHI, rng.standard_normal(SCORE_BIG_N))),
    ]


def _score_x(phi, eps):
    return phi**3 + math.exp(phi) * np.asarray(eps)  # (N,)


def _score_f(phi, eps):
    x = _score_x(phi, eps)
    return x**2 + np.sin(x)


def _score_f_prime(phi, eps):
    x = _score_x(phi, eps)
    return 2.0 * x + np.cos(x)


def _score_d_log_q(phi, eps):
    """d/dphi log N(x; phi^3, e^(2 phi)) at x = phi^3 + e^phi eps (x fixed):
    eps^2 - 1 + 3 phi^2 eps e^-phi."""
    eps = np.asarray(eps)
    return eps**2 - 1.0 + 3.0 * phi**2 * eps * math.exp(-phi)


def _score_oracle(phi, eps):
    eps = np.asarray(eps, dtype=np.float64)
    n = eps.shape[0]
    # score: d/dphi log q(x; phi) at x held fixed, through minivae's Gaussian log-density
    x = phi**3 + math.exp(phi) * eps  # (N,) the samples
    phi_s = Tensor(np.full(n, phi), requires_grad=True)  # one copy of phi per sample
    log_q = ops.gaussian_log_prob(_t(x), phi_s**3, 2.0 * phi_s)  # log N(x; phi^3, e^(2 phi))
    log_q.backward(np.ones(n))
    f = x**2 + np.sin(x)  # float64 formula: minivae has no sin
    # reparameterization: d f(x(phi))/dphi = f'(x) dx/dphi, dx/dphi through the engine
    phi_r = Tensor(np.full(n, phi), requires_grad=True)
    x_r = phi_r**3 + ops.exp(phi_r) * _t(eps)
    x_r.backward(np.ones(n))
    f_prime = 2.0 * x + np.cos(x)  # float64 formula
    return f * np.asarray(phi_s.grad), f_prime * np.asarray(phi_r.grad)


def _score_exact(phi):
    """d/dphi E[x^2 + sin x] = 6 phi^5 + 2 e^(2 phi) + exp(-e^(2 phi) / 2)(3 phi^2 cos phi^3 -
    e^(2 phi) sin phi^3) (lesson 00, part 6)."""
    e2 = math.exp(2 * phi)
    return (
        6 * phi**5
        + 2 * e2
        + math.exp(-e2 / 2) * (3 * phi**2 * math.cos(phi**3) - e2 * math.sin(phi**3))
    )


def _score_summary(cases, expected):
    exact = _score_exact(SCORE_PHI)
    g_score, g_rep = expected[-1]
    n = g_score.size
    lines = [(f"the estimators' means against the exact gradient:\n"
              f"  exact d/dphi E[f] = {exact:.4f}; means of {n:,} single-sample estimates:")]
    ok = True
    for label, g in (("score function (REINFORCE)", g_score), ("reparameterization", g_rep)):
        mean, se = float(g.mean()), float(g.std(ddof=1) / math.sqrt(n))
        ok &= abs(mean - exact) < 5 * se
        lines.append(f"  {label:27s} {mean:8.4f} +- {se:.4f}   (variance {g.var(ddof=1):.2f})")
    lines.append(
        f"  both unbiased; the score function's variance is "
        f"{g_score.var() / g_rep.var():.1f} times the reparameterized one's"
    )
    return ok, "\n".join(lines)


SCORE_FUNCTION = ValueExercise(
    name="score_function",
    title="score-function (REINFORCE) against reparameterized gradients on lesson 00's toy",
    math="x = phi^3 + e^phi eps ~ q_phi = N(phi^3, e^(2 phi)), f(x) = x^2 + sin x; per sample: "
    "g_score = f(x) d/dphi log q_phi(x) (x held fixed), g_reparam = f'(x) dx/dphi",
    lecture="PGM Lecture 30, 'Reparameterization Trick' (dz/dphi = dmu/dphi + eps dsigma/dphi); "
    "Computational Intelligence Lab, Series 9, Problem 1.4 and 1.5; the score function "
    "estimator of Williams 1992",
    inputs=("phi", "eps"),
    outputs=("g_score", "g_reparam"),
    make_cases=_score_cases,
    oracle=_score_oracle,
    oracle_name="the engine's backward through minivae.ops.gaussian_log_prob (the score) and "
    "through x = phi^3 + e^phi eps (dx/dphi); f and f' = 2x + cos x as float64 formulas",
    shapes="phi a float; eps (N,) = (8,), then (200000,); g_score, g_reparam (N,): one estimate "
    "per sample",
    hint="log q_phi(x) = -1/2 log 2pi - phi - (x - phi^3)^2 e^(-2 phi) / 2; differentiate it by "
    "phi with x fixed, then write the result with eps = (x - phi^3) e^(-phi). For the other "
    "one, the chain rule through x(phi).",
    mistakes=(
        Mistake(
            "the score misses the -1: log q has the term -log sigma = -phi, whose derivative "
            "is -1 (it is what makes E[score] = 0)",
            lambda phi, eps: (
                _score_f(phi, eps) * (_score_d_log_q(phi, eps) + 1.0),
                _score_oracle(phi, eps)[1],
            ),
        ),
        Mistake(
            "dx/dphi = 3 phi^2 only: x = phi^3 + e^phi eps, the spread e^phi eps depends on "
            "phi too",
            lambda phi, eps: (_score_oracle(phi, eps)[0], _score_f_prime(phi, eps) * 3.0 * phi**2),
        ),
        Mistake(
            "the two outputs swapped: return (g_score, g_reparam)",
            lambda phi, eps: _score_oracle(phi, eps)[::-1],
        ),
    ),
    summary=_score_summary,
)


# ----------------------------------------------------------------------------- M2 (lesson 06)


def _m2_bound_oracle(logits, bounds):
    lg = _t(logits)
    q = ops.softmax(lg, axis=1)  # q(y|x), (B, C)
    log_q = ops.log_softmax(lg, axis=1)
    return (_np((q * _t(bounds)).sum(axis=1) - (q * log_q).sum(axis=1)),)


def _np_q(logits):
    return _np_softmax(logits, 1)


def _np_entropy_cat(logits):
    q = _np_q(logits)
    return -(q * np.log(q)).sum(axis=1)


M2_UNLABELLED_BOUND = ValueExercise(
    name="m2_unlabelled_bound",
    title="M2's unlabelled bound U(x) from the classifier's logits and the bounds L(x, y)",
    math="U(x) = sum_y q(y|x) L(x, y) + H(q(y|x)), q = softmax(logits); here (as in minivae) "
    "L(x, y) and U(x) are bounds to MAXIMISE",
    lecture="VAE Extensions slides, 'What does the training objective look like?' "
    "(semi-supervised VAE, the bound for data points without labels); Kingma et al. 2014, "
    "eq. 7, which names the negatives: -U(x) = sum_y q(y|x)(-L(x, y)) + H(q(y|x))",
    inputs=("logits", "bounds"),
    outputs=("U",),
    make_cases=lambda rng: [
        (
            "B = 3 examples, C = 4 classes",
            (1.5 * rng.standard_normal((3, 4)), rng.uniform(-110.0, -90.0, (3, 4))),
        )
    ],
    oracle=_m2_bound_oracle,
    oracle_name="minivae.ops.softmax and log_softmax",
    shapes="logits (B, C) = (3, 4), the classifier's; bounds (B, C) = (3, 4), L(x, y) for every "
    "class y (nats, near -100); U (B,) = (3,)",
    hint="y is a latent variable with q(y|x): the bound's expectation over y is a q-weighted sum, "
    "and -E_q[log q(y|x)] adds the entropy. log q = logits - logsumexp(logits) is stable.",
    mistakes=(
        Mistake(
            "the loss convention: sum_y q(y|x)(-L(x, y)) + H treats L as a loss (Kingma et "
            "al. 2014, the slides), but here L(x, y) is a bound, as in minivae: "
            "U = sum_y q L + H",
            lambda lg, L: (_np_q(lg) * -L).sum(axis=1) + _np_entropy_cat(lg),
        ),
        Mistake(
            "the entropy H(q(y|x)) is missing: y is latent, so -E_q[log q(y|x)] is part "
            "of the bound",
            lambda lg, L: (_np_q(lg) * L).sum(axis=1),
        ),
        Mistake(
            "the entropy subtracted: U = sum_y q L + H(q), with H >= 0 added",
            lambda lg, L: (_np_q(lg) * L).sum(axis=1) - _np_entropy_cat(lg),
        ),
    ),
)


def _m2_optimal_summary(cases, expected):
    bounds = cases[0][1][0]
    q_star, u_max = expected[0]
    (u_at_star,) = _m2_bound_oracle(np.log(q_star), bounds)  # U at q* (logits = log q*)
    rng = np.random.default_rng(0)
    others = [
        float(
            (
                _m2_bound_oracle(np.log(q_star) + rng.standard_normal(q_star.shape), bounds)[0]
                - u_max
            ).max()
        )
        for _ in range(200)
    ]
    ok = bool(np.allclose(u_at_star, u_max, rtol=1e-10, atol=1e-9)) and max(others) <= 1e-9
    return ok, (
        f"  U(x) at q* equals U_max (largest difference {abs(u_at_star - u_max).max():.1e}); "
        f"200 other q(y|x) give less (at best {max(others):.2e} nats below)"
    )


M2_OPTIMAL_Q = ValueExercise(
    name="m2_optimal_q",
    title="the q(y|x) that maximises U(x), and U's value there",
    math="q* = argmax over distributions q of sum_y q_y L(x, y) + H(q); return q* and "
    "U_max = U at q*; L(x, y) is a bound (softmax(-L) in the loss convention)",
    lecture="VAE Extensions slides, 'What does the training objective look like?' "
    "(semi-supervised VAE); Kingma et al. 2014, eq. 7",
    inputs=("bounds",),
    outputs=("q", "U_max"),
    make_cases=lambda rng: [
        (
            "B = 3 examples, C = 4 classes, bounds a few nats apart",
            (rng.uniform(-100.0, -96.0, (3, 4)),),
        )
    ],
    oracle=lambda bounds: (
        _np(ops.softmax(_t(bounds), axis=1)),
        _np(ops.logsumexp(_t(bounds), axis=1)),
    ),
    oracle_name="minivae.ops.softmax and minivae.ops.logsumexp (then checked: U at q* with "
    "minivae's ops equals U_max)",
    shapes="bounds (B, C) = (3, 4), L(x, y) for every class; q (B, C), rows summing to 1; "
    "U_max (B,) = (3,)",
    hint="maximise sum_y q_y (L_y - log q_y) with a Lagrange multiplier for sum_y q_y = 1 "
    "(DERIVATIONS.md, problem 4); then put q* back into U.",
    mistakes=(
        Mistake(
            "softmax(-L): that is the optimum in the loss convention, where L(x, y) is "
            "minimised; here L(x, y) is a bound, so q* = softmax(+L)",
            lambda L: (_np_softmax(-L, 1), _logsumexp(L, 1)),
        ),
        Mistake(
            "U_max = max_y L(x, y): that is the best single class (a one-hot q, H = 0); "
            "the soft q* also gains the entropy, U_max = log sum_y exp L(x, y)",
            lambda L: (_np_softmax(L, 1), L.max(axis=1)),
        ),
        Mistake(
            "U_max = sum_y q*_y L(x, y): the entropy H(q*) is missing",
            lambda L: (_np_softmax(L, 1), (_np_softmax(L, 1) * L).sum(axis=1)),
        ),
    ),
    summary=_m2_optimal_summary,
)


VALUES = (
    ELBO_BERNOULLI,
    ELBO_SAMPLES,
    KL_DIAG,
    KL_FULL,
    ENTROPY_DIAG,
    GAUSSIAN_DECODER_ALPHA,
    LOG_PX_IMPORTANCE,
    IWAE_WEIGHTS,
    IWAE_TOY,
    SCORE_FUNCTION,
    M2_UNLABELLED_BOUND,
    M2_OPTIMAL_Q,
)
