"""Exact checks against models whose likelihood and posterior are closed form.

Probabilistic PCA (Tipping & Bishop 1999) is the linear-Gaussian latent model
    z ~ N(0, I_q),  x | z ~ N(W z + b, s^2 I_d),
with  log p(x) = log N(x | b, W W^T + s^2 I)  and the posterior
    p(z | x) = N(M^-1 W^T (x - b), s^2 M^-1),   M = W^T W + s^2 I.
Its expected reconstruction term is closed form too:
    E_q ||x - W z - b||^2 = ||x - W mu_q - b||^2 + tr(W Sigma_q W^T).
So the ELBO the library computes (Understanding Deep Learning, ch. 17: ELBO = log p(x) - KL(q || p(z | x)))
can be checked to rounding error, not to Monte-Carlo error. The last test checks
M2's unlabelled bound against its definition, with the noise fixed.
"""

from __future__ import annotations

import math

import pytest

import minivae
from minivae import Tensor, metrics
from minivae import backend as B
from minivae import distributions as dist
from minivae.data import Batch
from minivae.metrics import importance_sampled_log_likelihood
from minivae.models import VAE, SemiSupervisedVAE
from minivae.optim import Adam

np = B.np
D, Q, SIGMA = 5, 2, 0.5


@pytest.fixture(autouse=True)
def _float64():
    with minivae.set_default_dtype("float64"):
        B.manual_seed(99)
        yield


# ----------------------------------------------------------------------------- pPCA in NumPy


def gaussian_logpdf(x, mean, cov):
    """log N(x | mean, cov) for each row of x."""
    r = x - mean
    _, logdet = np.linalg.slogdet(cov)
    return -0.5 * (x.shape[-1] * math.log(2 * math.pi) + logdet
                   + np.einsum("ni,ij,nj->n", r, np.linalg.inv(cov), r))  # fmt: skip


class PPCA:
    def __init__(self, W, b, s):
        self.W, self.b, self.s = W, b, s
        self.M = W.T @ W + s**2 * np.eye(W.shape[1])

    def log_px(self, x):
        return gaussian_logpdf(x, self.b, self.W @ self.W.T + self.s**2 * np.eye(len(self.b)))

    def posterior(self, x):
        """(means (B, q), covariance (q, q)) of p(z | x)."""
        Minv = np.linalg.inv(self.M)
        return (x - self.b) @ (Minv @ self.W.T).T, self.s**2 * Minv

    def elbo(self, x, mu_q, cov_q, kl):
        """The library's ELBO: gaussian_log_likelihood at the mean, minus the trace term, minus kl."""
        mean = Tensor(mu_q @ self.W.T + self.b)
        recon = dist.gaussian_log_likelihood(Tensor(x), mean, 2 * math.log(self.s)).numpy()
        trace = np.trace(self.W @ cov_q @ self.W.T, axis1=-2, axis2=-1)
        return recon - trace / (2 * self.s**2) - kl


def kl_gauss(mu_q, cov_q, mu_p, cov_p):
    """KL(N(mu_q, cov_q) || N(mu_p, cov_p)) for each row of the means, in NumPy."""
    inv = np.linalg.inv(cov_p)
    r = mu_p - mu_q
    return 0.5 * (np.trace(inv @ cov_q) + np.einsum("ni,ij,nj->n", r, inv, r) - len(inv)
                  + np.linalg.slogdet(cov_p)[1] - np.linalg.slogdet(cov_q)[1])  # fmt: skip


@pytest.fixture
def ppca():
    rng = np.random.default_rng(0)
    model = PPCA(rng.standard_normal((D, Q)), rng.standard_normal(D), SIGMA)
    x = rng.standard_normal((8, Q)) @ model.W.T + model.b + SIGMA * rng.standard_normal((8, D))
    return model, x


@pytest.fixture
def orthogonal_ppca():
    """W with orthogonal columns: the posterior covariance is diagonal, a diagonal q can match it."""
    rng = np.random.default_rng(1)
    U, _ = np.linalg.qr(rng.standard_normal((D, Q)))
    model = PPCA(U * np.array([2.0, 1.2]), rng.standard_normal(D), SIGMA)
    x = rng.standard_normal((8, Q)) @ model.W.T + model.b + SIGMA * rng.standard_normal((8, D))
    return model, x


# ----------------------------------------------------------------------------- the ELBO identities


def test_elbo_with_the_true_posterior_is_log_px(ppca):
    model, x = ppca
    mu, cov = model.posterior(x)
    L = np.linalg.cholesky(cov)
    q = dist.FullGaussian(Tensor(mu), Tensor(np.broadcast_to(L, (len(x), Q, Q)).copy()))
    elbo = model.elbo(x, mu, cov, q.kl_to_standard().numpy())
    assert np.max(np.abs(elbo - model.log_px(x))) < 1e-8
    # with q = p(z|x), log p(x, z) - log q(z|x) = log p(x) for every z: one sample is exact
    z = q.sample()  # (B, Q)
    log_joint = (dist.gaussian_log_likelihood(Tensor(x), z @ Tensor(model.W.T) + model.b,
                                              2 * math.log(SIGMA))
                 + dist.standard_normal_log_prob(z))  # fmt: skip
    one_sample = (log_joint - q.log_prob(z)).numpy()
    assert np.max(np.abs(one_sample - model.log_px(x))) < 1e-8


def test_the_gap_is_the_kl_to_the_posterior(ppca):
    model, x = ppca
    rng = np.random.default_rng(2)
    mu_post, cov_post = model.posterior(x)
    # a diagonal q, away from the posterior
    mu_q, log_var_q = mu_post + 0.3 * rng.standard_normal(mu_post.shape), rng.normal(-1, 0.3, (8, Q))
    kl = dist.DiagonalGaussian(Tensor(mu_q), Tensor(log_var_q)).kl_to_standard().numpy()
    cov_q = np.stack([np.diag(np.exp(v)) for v in log_var_q])  # (B, Q, Q)
    gap = model.log_px(x) - model.elbo(x, mu_q, cov_q, kl)
    exact = np.array([kl_gauss(mu_q[i : i + 1], cov_q[i], mu_post[i : i + 1], cov_post)[0]
                      for i in range(len(x))])  # fmt: skip
    assert np.all(gap > 0) and np.max(np.abs(gap - exact)) < 1e-8
    # a full-covariance q
    log_diag, offdiag = 0.3 * rng.standard_normal((8, Q)), 0.5 * rng.standard_normal((8, 1))
    q = dist.FullGaussian.from_unconstrained(Tensor(mu_q), Tensor(log_diag), Tensor(offdiag))
    gap = model.log_px(x) - model.elbo(x, mu_q, q.covariance, q.kl_to_standard().numpy())
    exact = np.array([kl_gauss(mu_q[i : i + 1], q.covariance[i], mu_post[i : i + 1], cov_post)[0]
                      for i in range(len(x))])  # fmt: skip
    assert np.all(gap > 0) and np.max(np.abs(gap - exact)) < 1e-8


def linear_vae_at_the_posterior(model: PPCA, kl: str, n_samples: int = 1) -> VAE:
    """A linear VAE whose encoder is exactly p(z | x) and whose decoder is the pPCA's."""
    vae = VAE(x_dim=D, hidden=(), latent=Q, likelihood="gaussian", sigma=SIGMA, kl=kl,
              n_samples=n_samples)
    Minv = np.linalg.inv(model.M)
    enc, dec = vae.encoder.layers[0], vae.decoder.layers[0]
    enc.weight.data[...] = np.concatenate([model.W @ Minv, np.zeros((D, Q))], axis=1)  # (D, 2Q)
    enc.bias.data[...] = np.concatenate([-Minv @ model.W.T @ model.b,
                                         np.log(np.diag(SIGMA**2 * Minv))])  # fmt: skip
    dec.weight.data[...] = model.W.T  # (Q, D)
    dec.bias.data[...] = model.b
    return vae


def test_linear_vae_at_the_posterior_gives_log_px_exactly(orthogonal_ppca):
    model, x = orthogonal_ppca
    log_px = model.log_px(x)
    _, cov = model.posterior(x)
    assert np.allclose(cov, np.diag(np.diag(cov)), atol=1e-14)  # the posterior is diagonal here
    # kl="mc": log p(x|z) + log p(z) - log q(z|x) is log p(x) at every sample
    vae = linear_vae_at_the_posterior(model, "mc", n_samples=3)
    assert np.max(np.abs(vae.elbo(x)["elbo"].numpy() - log_px)) < 1e-8
    # kl="analytic" at z = mu (eps = 0), plus the closed-form trace term
    vae = linear_vae_at_the_posterior(model, "analytic")
    elbo = vae.elbo(x, eps=np.zeros((len(x), Q)))["elbo"].numpy()
    trace = np.trace(model.W @ cov @ model.W.T)
    assert np.max(np.abs(elbo - trace / (2 * SIGMA**2) - log_px)) < 1e-8
    # importance sampling with q = p(z|x): every weight is p(x); chunks must combine exactly
    ll = importance_sampled_log_likelihood(vae, x, k=1000, chunk=37)
    assert ll.shape == (len(x),) and np.max(np.abs(ll - log_px)) < 1e-8


def test_importance_sampling_converges_to_log_px(orthogonal_ppca):
    model, x = orthogonal_ppca
    vae = linear_vae_at_the_posterior(model, "analytic")
    bias = vae.encoder.layers[0].bias.data
    bias[:Q] += 0.4  # a worse q: shifted means ...
    bias[Q:] += 0.8  # ... and too wide
    log_px = model.log_px(x)
    errors = []
    for k in (1, 10, 100, 1000, 10_000):
        B.manual_seed(5)
        errors.append(np.mean(np.abs(importance_sampled_log_likelihood(vae, x, k=k) - log_px)))
    assert errors[-1] < 0.02 and errors[-1] < errors[0] / 10, errors
    assert errors[-1] < errors[-2] < errors[-3] < errors[0], errors
    # chunking changes nothing: the same draws, combined by a running log-sum-exp
    B.manual_seed(6)
    whole = importance_sampled_log_likelihood(vae, x, k=500, chunk=500)
    B.manual_seed(6)
    chunked = importance_sampled_log_likelihood(vae, x, k=500, chunk=64)
    assert np.max(np.abs(whole - chunked)) < 1e-10


# ----------------------------------------------------------------------------- training reaches the MLE


def ppca_mle_log_likelihood(x, q):
    """Tipping & Bishop 1999: s^2 = mean of the d - q smallest eigenvalues of the sample covariance,
    W = U_q (Lambda_q - s^2 I)^(1/2), b = the sample mean; returns the mean log-likelihood."""
    S = np.cov(x.T, bias=True)
    lam, U = np.linalg.eigh(S)
    lam, U = lam[::-1], U[:, ::-1]
    s2 = lam[q:].mean()
    W = U[:, :q] * np.sqrt(lam[:q] - s2)
    return gaussian_logpdf(x, x.mean(axis=0), W @ W.T + s2 * np.eye(x.shape[1])).mean()


def test_linear_vae_trained_with_adam_reaches_the_ppca_mle():
    rng = np.random.default_rng(3)
    W, b = rng.standard_normal((D, Q)), rng.standard_normal(D)
    x = rng.standard_normal((1000, Q)) @ W.T + b + SIGMA * rng.standard_normal((1000, D))
    best = ppca_mle_log_likelihood(x, Q)
    B.manual_seed(1)
    vae = VAE(x_dim=D, hidden=(), latent=Q, likelihood="gaussian", learned_sigma=True)
    opt = Adam(vae.parameters(), lr=0.1)
    for step in range(2000):
        if step == 1400:
            opt.lr = 0.01
        opt.zero_grad()
        loss, _ = vae.loss(Batch(x))
        loss.backward()
        opt.step()
    dec = vae.decoder.layers[0]
    W_fit, b_fit = dec.weight.numpy().T, dec.bias.numpy()
    s2_fit = float(np.exp(vae.decoder_log_var.numpy()[0]))
    cov = W_fit @ W_fit.T + s2_fit * np.eye(D)
    fitted = gaussian_logpdf(x, b_fit, cov).mean()  # the trained model's exact log-likelihood
    assert fitted <= best + 1e-9  # nothing beats the maximum
    assert best - fitted < 0.01, (best, fitted)  # stated tolerance: 0.01 nats per example
    # the importance-sampled estimate of the trained model agrees with its exact value
    B.manual_seed(2)
    ll = importance_sampled_log_likelihood(vae, x[:50], k=2000)
    assert np.max(np.abs(ll - gaussian_logpdf(x[:50], b_fit, cov))) < 0.01


# ----------------------------------------------------------------------------- M2's unlabelled bound


def test_m2_unlabelled_bound_is_the_q_weighted_labelled_bounds_plus_entropy():
    B.manual_seed(4)
    m2 = SemiSupervisedVAE(x_dim=6, hidden=(5,), latent=2, activation="tanh", n_classes=3,
                           n_samples=2, alpha=1.0)
    rng = np.random.default_rng(4)
    x = rng.random((4, 6))
    eps = rng.standard_normal((2, 4, 2))  # fixed noise, the same for every class
    unlabelled = m2.elbo(x, eps=eps)
    logits = m2.classifier_logits(x).numpy()
    q = np.exp(logits - logits.max(axis=1, keepdims=True))
    q /= q.sum(axis=1, keepdims=True)
    entropy = -(q * np.log(q)).sum(axis=1)
    labelled = np.stack([m2.elbo(x, np.full(4, c), eps=eps)["elbo"].numpy() for c in range(3)], axis=1)
    expected = (q * labelled).sum(axis=1) + entropy
    assert np.max(np.abs(unlabelled["elbo"].numpy() - expected)) < 1e-10
    assert np.allclose(unlabelled["entropy"].numpy(), entropy, rtol=1e-12)
    # the labelled bound includes log p(y) = -log C: L = recon - KL_z - log C
    lab = m2.elbo(x, np.zeros(4, dtype=np.int64), eps=eps)
    assert np.allclose(lab["elbo"].numpy(), (lab["recon"] - lab["kl_z"]).numpy() - math.log(3),
                       rtol=1e-13)  # fmt: skip


def test_the_eval_report_gives_log_px_exactly_at_the_posterior(orthogonal_ppca):
    """``minivae eval``'s numbers (``metrics.test_report``): with q = p(z | x) and the Monte
    Carlo KL every bound and every importance weight is log p(x), whatever the draws, so the
    report's ELBO and NLL are the mean log p(x) and its negative, to their rounding (4 and 3
    decimals); batches of 3 check how the report sums over batches."""
    model, x = orthogonal_ppca
    vae = linear_vae_at_the_posterior(model, "mc")
    report = metrics.test_report(vae, x, k=50, batch_size=3)
    mean_log_px = float(model.log_px(x).mean())
    assert report["n_examples"] == len(x)
    assert abs(report["test_elbo"] - mean_log_px) <= 5e-5 + 1e-9
    assert abs(report["test_nll_k50"] + mean_log_px) <= 5e-4 + 1e-9
