"""Tests of minivae.distributions and the Gaussian ops behind it, checked against closed forms.

Monte-Carlo comparisons use a fixed seed and a tolerance of 4 standard errors,
so each would fail for a wrong formula (a factor of 2 in a variance, a missing
term) while passing for the right one.
"""

from __future__ import annotations

import math

import pytest

import minivae
from minivae import Tensor, ops
from minivae import backend as B
from minivae import distributions as dist
from minivae.tensor import Function

np = B.np


@pytest.fixture(autouse=True)
def _float64():
    with minivae.set_default_dtype("float64"):
        B.manual_seed(1234)
        yield


def _random_chol(rng, batch, d):
    log_diag = 0.3 * rng.standard_normal((batch, d))
    offdiag = 0.6 * rng.standard_normal((batch, d * (d - 1) // 2))
    return log_diag, offdiag


# ----------------------------------------------------------------------------- sigma from log-variance


def test_sampler_and_kl_read_log_var_the_same_way():
    n = 200_000
    mu = Tensor(np.array([[0.5, -1.0]]))
    log_var = Tensor(np.full((1, 2), math.log(4.0)))
    q = dist.DiagonalGaussian(mu, log_var)
    z = q.sample(n).numpy()[:, 0, :]  # (n, 2)
    # std 2: the standard error of a sample std is about sigma / sqrt(2 n) = 0.0032
    assert np.allclose(z.std(axis=0), 2.0, atol=4 * 2.0 / math.sqrt(2 * n))
    assert np.allclose(q.std.numpy(), 2.0, rtol=1e-15)
    kl = q.kl_to_standard().numpy()[0]
    expected = 0.5 * sum(m * m + 4.0 - 1.0 - math.log(4.0) for m in (0.5, -1.0))
    assert kl == pytest.approx(expected, rel=1e-14)


def test_diagonal_samples_have_the_requested_mean_and_variance():
    n = 100_000
    rng = np.random.default_rng(0)
    mu, log_var = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    z = dist.DiagonalGaussian(Tensor(mu), Tensor(log_var)).sample(n).numpy()  # (n, 3, 4)
    assert z.shape == (n, 3, 4)
    sd = np.exp(0.5 * log_var)
    assert np.all(np.abs(z.mean(axis=0) - mu) < 4 * sd / math.sqrt(n))
    var_se = np.exp(log_var) * math.sqrt(2.0 / n)
    assert np.all(np.abs(z.var(axis=0) - np.exp(log_var)) < 4 * var_se)


def test_full_covariance_samples_have_the_requested_mean_and_covariance():
    n = 200_000
    rng = np.random.default_rng(1)
    log_diag, offdiag = _random_chol(rng, 2, 3)
    mu = rng.standard_normal((2, 3))
    q = dist.FullGaussian.from_unconstrained(Tensor(mu), Tensor(log_diag), Tensor(offdiag))
    sigma = q.covariance  # (2, 3, 3)
    z = q.sample(n).numpy()  # (n, 2, 3)
    for b in range(2):
        assert np.all(np.abs(z[:, b].mean(axis=0) - mu[b]) < 4 * np.sqrt(np.diag(sigma[b]) / n))
        cov = np.cov(z[:, b].T)
        # sd of a sample covariance entry: sqrt((S_ii S_jj + S_ij^2) / n)
        se = np.sqrt((np.outer(np.diag(sigma[b]), np.diag(sigma[b])) + sigma[b] ** 2) / n)
        assert np.all(np.abs(cov - sigma[b]) < 4 * se)
    # the factor is lower-triangular with a positive diagonal, and Sigma = L L^T
    L = q.L.numpy()
    assert np.all(np.triu(L, 1) == 0) and np.all(np.diagonal(L, axis1=1, axis2=2) > 0)
    assert np.allclose(sigma, L @ L.transpose(0, 2, 1), rtol=1e-14)


# ----------------------------------------------------------------------------- KL


def _mc_mean_and_se(values):
    values = np.asarray(values)
    return values.mean(axis=0), values.std(axis=0) / math.sqrt(values.shape[0])


def test_analytic_kl_matches_monte_carlo_diagonal():
    rng = np.random.default_rng(2)
    q = dist.DiagonalGaussian(Tensor(rng.standard_normal((4, 3))), Tensor(rng.standard_normal((4, 3))))
    z = q.sample(100_000)
    mc, se = _mc_mean_and_se((q.log_prob(z) - dist.standard_normal_log_prob(z)).numpy())
    analytic = q.kl_to_standard().numpy()
    assert np.all(np.abs(mc - analytic) < 4 * se), (mc, analytic, se)
    # KL(q || p) for another diagonal Gaussian p
    p = dist.DiagonalGaussian(Tensor(rng.standard_normal((4, 3))), Tensor(rng.standard_normal((4, 3))))
    mc, se = _mc_mean_and_se((q.log_prob(z) - p.log_prob(z)).numpy())
    assert np.all(np.abs(mc - q.kl(p).numpy()) < 4 * se)
    # KL to a standard normal written as a DiagonalGaussian is the same number
    std = dist.DiagonalGaussian(Tensor(np.zeros((4, 3))), Tensor(np.zeros((4, 3))))
    assert np.allclose(q.kl(std).numpy(), analytic, rtol=1e-13)


def test_analytic_kl_matches_monte_carlo_full_covariance():
    rng = np.random.default_rng(3)
    log_diag, offdiag = _random_chol(rng, 3, 4)
    q = dist.FullGaussian.from_unconstrained(
        Tensor(rng.standard_normal((3, 4))), Tensor(log_diag), Tensor(offdiag)
    )
    z = q.sample(100_000)
    mc, se = _mc_mean_and_se((q.log_prob(z) - dist.standard_normal_log_prob(z)).numpy())
    analytic = q.kl_to_standard().numpy()
    assert np.all(np.abs(mc - analytic) < 4 * se), (mc, analytic, se)
    # and the closed form itself: 1/2 (tr S + m^T m - D - log det S)
    for b in range(3):
        S, m = q.covariance[b], q.mu.numpy()[b]
        closed = 0.5 * (np.trace(S) + m @ m - 4 - np.linalg.slogdet(S)[1])
        assert analytic[b] == pytest.approx(closed, rel=1e-12)


def test_full_and_diagonal_agree_when_the_factor_is_diagonal():
    rng = np.random.default_rng(4)
    mu, log_var = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    diag = dist.DiagonalGaussian(Tensor(mu), Tensor(log_var))
    full = dist.FullGaussian.from_unconstrained(Tensor(mu), Tensor(0.5 * log_var), Tensor(np.zeros((3, 1))))
    eps = rng.standard_normal((5, 3, 2))
    assert np.allclose(full.sample(eps=eps).numpy(), diag.sample(eps=eps).numpy(), rtol=1e-14)
    z = Tensor(rng.standard_normal((5, 3, 2)))
    assert np.allclose(full.log_prob(z).numpy(), diag.log_prob(z).numpy(), rtol=1e-13)
    assert np.allclose(full.kl_to_standard().numpy(), diag.kl_to_standard().numpy(), rtol=1e-13)


def test_entropy_is_minus_the_expected_log_density():
    rng = np.random.default_rng(5)
    q = dist.DiagonalGaussian(Tensor(rng.standard_normal((2, 3))), Tensor(rng.standard_normal((2, 3))))
    mc, se = _mc_mean_and_se(-q.log_prob(q.sample(50_000)).numpy())
    assert np.all(np.abs(mc - q.entropy().numpy()) < 4 * se)


# ----------------------------------------------------------------------------- the reparameterization gradient


class Sin(Function):
    """y = sin x (only this test needs it)"""

    def forward(self, x):
        self.x = x
        return B.xp.sin(x)

    def backward(self, grad_out):
        # dy/dx = cos x
        return (grad_out * B.xp.cos(self.x),)


@pytest.mark.parametrize("phi0", [0.3, -0.5])
def test_reparameterized_gradient_matches_the_closed_form_derivative(phi0):
    # x ~ N(phi^3, exp(phi)^2), f(x) = x^2 + sin x:
    # E f = phi^6 + e^(2 phi) + sin(phi^3) exp(-e^(2 phi) / 2)
    n = 400_000
    eps = np.random.default_rng(6).standard_normal((n, 1))
    phi = Tensor(np.array([phi0]), requires_grad=True)
    z = ops.reparameterize(phi**3, 2.0 * phi, eps)  # log sigma^2 = 2 phi, so sigma = e^phi
    f = z * z + Sin.apply(z)  # (n, 1)
    f.mean().backward()
    grad = float(phi.grad[0])
    e2 = math.exp(2 * phi0)
    exact = (6 * phi0**5 + 2 * e2
             + math.exp(-e2 / 2) * (3 * phi0**2 * math.cos(phi0**3) - e2 * math.sin(phi0**3)))  # fmt: skip
    # per-sample gradients: df/dz * dz/dphi with dz/dphi = 3 phi^2 + eps e^phi
    zs = z.numpy()[:, 0]
    per_sample = (2 * zs + np.cos(zs)) * (3 * phi0**2 + eps[:, 0] * math.exp(phi0))
    assert grad == pytest.approx(per_sample.mean(), rel=1e-10)  # the engine's backward is exact
    se = per_sample.std() / math.sqrt(n)
    assert abs(grad - exact) < 4 * se, (grad, exact, se)


# ----------------------------------------------------------------------------- likelihoods and reductions


def test_likelihoods_sum_over_data_dimensions_per_example():
    rng = np.random.default_rng(7)
    x = (rng.random((4, 6)) > 0.5).astype(np.float64)
    logits = rng.standard_normal((3, 4, 6))  # 3 samples
    out = dist.bernoulli_log_likelihood(Tensor(logits), Tensor(x)).numpy()
    p = 1.0 / (1.0 + np.exp(-logits))
    assert out.shape == (3, 4)
    assert np.allclose(out, (x * np.log(p) + (1 - x) * np.log(1 - p)).sum(axis=-1), rtol=1e-12)

    mean, log_var = rng.standard_normal((4, 6)), -0.7
    out = dist.gaussian_log_likelihood(Tensor(x), Tensor(mean), log_var).numpy()
    ref = (-0.5 * (np.log(2 * np.pi) + log_var + (x - mean) ** 2 / np.exp(log_var))).sum(axis=-1)
    assert out.shape == (4,) and np.allclose(out, ref, rtol=1e-12)

    images = rng.random((2, 3, 5))  # data axes beyond the batch axis are all summed
    img_logits = rng.standard_normal((2, 3, 5))
    out = dist.bernoulli_log_likelihood(Tensor(img_logits), Tensor(images)).numpy()
    flat = dist.bernoulli_log_likelihood(Tensor(img_logits.reshape(2, 15)), Tensor(images.reshape(2, 15)))
    assert out.shape == (2,) and np.allclose(out, flat.numpy(), rtol=1e-13)

    logits_c, y = rng.standard_normal((4, 5)), np.array([0, 4, 2, 2])
    out = dist.categorical_log_prob(Tensor(logits_c), y).numpy()
    log_p = logits_c - np.log(np.exp(logits_c).sum(axis=1, keepdims=True))
    assert np.allclose(out, log_p[np.arange(4), y], rtol=1e-12)


def test_log_mean_exp_is_stable_and_exact():
    a = np.array([[1000.0, -3.0], [1000.0 + math.log(3.0), -2.0]])
    out = dist.log_mean_exp(Tensor(a), axis=0).numpy()
    assert np.isfinite(out).all()
    assert out[0] == pytest.approx(1000.0 + math.log(2.0))  # log((e^1000 + 3 e^1000) / 2)
    assert out[1] == pytest.approx(math.log((math.exp(-3.0) + math.exp(-2.0)) / 2), rel=1e-14)


# ----------------------------------------------------------------------------- bad input


def test_bad_inputs_raise_clear_errors():
    q = dist.DiagonalGaussian(Tensor(np.zeros((2, 3))), Tensor(np.zeros((2, 3))))
    with pytest.raises(ValueError, match="got 0"):
        q.sample(0)
    with pytest.raises(ValueError, match="-2"):
        q.sample(-2)
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        ops.cholesky_factor(Tensor(np.zeros((2, 3))), Tensor(np.zeros((2, 2))))
    L = np.eye(2)[None].copy()
    L[0, 1, 1] = -0.5
    with pytest.raises(ValueError, match="-0.5"):
        ops.kl_full_std(Tensor(np.zeros((1, 2))), Tensor(L))
    with pytest.raises(ValueError, match=r"\(1, 3, 3\)"):
        dist.FullGaussian(Tensor(np.zeros((1, 3))), Tensor(np.eye(2)[None]))
    with pytest.raises(ValueError, match="do not broadcast"):
        ops.reparameterize(Tensor(np.zeros((2, 3))), Tensor(np.zeros((2, 3))), np.zeros((2, 4)))


# ----------------------------------------------------------------------------- total correlation


def _batch_posterior(mu, log_var):
    return dist.DiagonalGaussian(Tensor(mu, requires_grad=True), Tensor(log_var, requires_grad=True))


def test_total_correlation_is_zero_where_the_aggregate_posterior_factorizes():
    """Means on a full product grid, one shared variance: the batch's mixture is a product of
    per-unit mixtures, so log q(z) = sum_d log q(z_d) at every point, up to rounding."""
    grid = np.array(np.meshgrid([-1.0, 0.5], [-2.0, 1.0], [0.0, 3.0], indexing="ij"))
    mu = grid.reshape(3, -1).T  # (8, 3): every combination of the values per unit
    q = _batch_posterior(mu, np.full((8, 3), np.log(0.3)))
    z = Tensor(np.random.default_rng(0).standard_normal((8, 3)) * 2.0)
    tc = dist.total_correlation(z, q).numpy()
    assert tc.shape == (8,)
    np.testing.assert_allclose(tc, 0.0, atol=1e-12)


def test_total_correlation_is_large_for_codes_that_move_together():
    """Every unit copies one number t_j: the aggregate lies on the diagonal, far from the
    product of its marginals; TC then approaches (D - 1) log B as the variance shrinks."""
    t = np.linspace(-2.0, 2.0, 16)
    mu = np.repeat(t[:, None], 3, axis=1)  # (16, 3)
    q = _batch_posterior(mu, np.full((16, 3), np.log(1e-4)))
    z = q.sample(eps=np.random.default_rng(1).standard_normal((16, 3)))
    tc = dist.total_correlation(z, q).numpy()
    assert np.all(tc > 0.9 * 2 * np.log(16))
    assert np.all(tc <= 2 * np.log(16) + 1e-9)  # log q(z) <= log(1/B) + max, marginals >= ...


@pytest.mark.parametrize("fast_paths", [True, False], ids=["fast", "plain"])
def test_total_correlation_gradients_match_central_differences(fast_paths):
    from minivae import fast
    from minivae.gradcheck import gradcheck

    rng = np.random.default_rng(2)
    z, mu, log_var = (Tensor(rng.standard_normal((5, 3)), requires_grad=True) for _ in range(3))

    def tc(z, mu, log_var):
        return dist.total_correlation(z, dist.DiagonalGaussian(mu, 0.5 * log_var))

    with fast.set_enabled(fast_paths):
        report = gradcheck(tc, [z, mu, log_var], mode="full")
    assert report.ok, str(report)
    assert report.checked == 5 * 45  # every entry of the (B,) x (3 inputs of 15) Jacobian


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("batch", [1, 7, 300])
def test_fast_total_correlation_matches_the_plain_ops(dtype, batch, device):
    """fast.TotalCorrelation (one op, slices of (B, B)) against the eight plain ops: values
    and all three gradients, for tight and broad posteriors, to a few eps of the dtype."""
    from minivae import fast

    rng = np.random.default_rng(batch)
    z0, mu0 = (rng.standard_normal((batch, 4)).astype(dtype) * 2 for _ in range(2))
    log_var0 = (rng.standard_normal((batch, 4)) * 3 - 2).astype(dtype)  # sigma^2 from e^-11 to e^7
    weights = rng.standard_normal(batch).astype(dtype)
    results = {}
    for flag in (True, False):
        with fast.set_enabled(flag):
            z, mu, log_var = (Tensor(B.from_numpy(a), requires_grad=True)
                              for a in (z0, mu0, log_var0))  # fmt: skip
            tc = dist.total_correlation(z, dist.DiagonalGaussian(mu, log_var))
            (tc * Tensor(B.from_numpy(weights))).sum().backward()
            results[flag] = [B.to_numpy(a) for a in (tc.data, z.grad, mu.grad, log_var.grad)]
    eps = np.finfo(dtype).eps
    for name, got, want in zip(["tc", "dz", "dmu", "dlog_var"], results[True], results[False]):
        assert got.dtype == np.dtype(dtype), name
        scale = max(np.abs(want).max(), 1.0)
        assert np.abs(got - want).max() <= 64 * eps * scale, name
    if batch == 1:  # one example: its own aggregate, which factorizes
        np.testing.assert_allclose(results[True][0], 0.0, atol=64 * eps)


def test_fast_total_correlation_names_shapes_that_do_not_match():
    from minivae import fast

    z = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"\(B, D\) arrays of one shape.*\(4, 3\).*\(4, 2\)"):
        fast.TotalCorrelation.apply(z, np.zeros((4, 3)), np.zeros((4, 2)))
