"""The VAE with a full-covariance posterior, q(z | x) = N(mu(x), L(x) L(x)^T) (covariance="full").

Held against float64 formulas written here in NumPy (the ELBO, the closed-form KL, the
log-density of a full Gaussian), against the diagonal VAE when L has nothing below its
diagonal, through gradient checks of the whole loss, and through config and checkpoint
round trips. Models are tiny and run in float64 (model_fixtures.py).
"""

from __future__ import annotations

import json
import math

import pytest
from model_fixtures import assert_loss_gradients, data, tiny

import minivae
from minivae import backend as B
from minivae.checkpoint import load_model, parameter_shapes, save_checkpoint
from minivae.data import Batch
from minivae.distributions import FullGaussian
from minivae.models import VAE, build_model

np = B.np
D = 2  # the tiny models' latent size


@pytest.fixture(autouse=True)
def _float64():
    with minivae.set_default_dtype("float64"):
        B.manual_seed(11)
        yield


def full_model(**kwargs):
    """A tiny full-covariance VAE whose q(z | x) is correlated: the weights of the entries below
    L's diagonal, which start at 0, are set to random numbers."""
    model = tiny("vae", covariance="full", **kwargs)
    last = model.encoder[-1].weight.data  # (hidden, D + D (D + 1) / 2)
    last[:, 2 * D :] = B.from_numpy(np.random.default_rng(5).standard_normal(last[:, 2 * D :].shape))
    return model


def encoder_parts(model, x):
    """(mu (B, D), L (B, D, D)) of q(z | x), built in NumPy from the encoder's raw outputs."""
    h = model.encoder(minivae.Tensor(x)).numpy()  # (B, D + D (D + 1) / 2)
    mu, v, below = h[:, :D], h[:, D : 2 * D], h[:, 2 * D :]
    L = np.zeros((len(x), D, D))
    rows, cols = np.tril_indices(D, -1)
    L[:, rows, cols] = below
    L[:, np.arange(D), np.arange(D)] = np.exp(v / 2)  # L_dd = e^(v_d / 2)
    return mu, L


def log_normal_full(z, mu, cov):
    """log N(z | mu, cov) by the textbook formula, with an explicit inverse and determinant."""
    r = z - mu  # (..., B, D)
    quad = np.einsum("...i,...ij,...j->...", r, np.linalg.inv(cov), r)
    return -0.5 * (D * math.log(2 * math.pi) + np.log(np.linalg.det(cov)) + quad)


def bernoulli_log_lik(logits, x):
    return (x * logits - np.logaddexp(0.0, logits)).sum(axis=-1)


def noise(*shape, seed=3):
    return np.random.default_rng(seed).standard_normal(shape)


# ----------------------------------------------------------------------------- values


def test_the_encoder_has_one_output_per_entry_of_mu_and_L():
    for latent in (1, 2, 5, 20):
        model = tiny("vae", covariance="full", latent=latent)
        width = latent + latent * (latent + 1) // 2
        assert model.posterior_width(model.config) == width
        assert model.encoder.layers[-1].weight.shape[1] == width
        assert VAE.posterior_width(tiny("vae", latent=latent).config) == 2 * latent


def test_elbo_equals_the_float64_formula():
    model = full_model()
    x, _ = data(n=6)
    eps = noise(6, D)
    mu, L = encoder_parts(model, x)
    cov = L @ L.transpose(0, 2, 1)
    z = mu + np.einsum("bij,bj->bi", L, eps)  # z = mu + L eps
    recon = bernoulli_log_lik(model.decode_logits(z).numpy(), x)
    # KL(N(mu, Sigma) || N(0, I)) = 1/2 (tr Sigma + mu^T mu - D - log det Sigma)
    kl = 0.5 * (np.trace(cov, axis1=1, axis2=2) + (mu * mu).sum(1) - D
                - np.log(np.linalg.det(cov)))  # fmt: skip
    terms = model.elbo(x, eps=eps)
    assert np.allclose(terms["recon"].numpy(), recon, rtol=1e-12)
    assert np.allclose(terms["kl"].numpy(), kl, rtol=1e-12)
    assert np.allclose(terms["elbo"].numpy(), recon - kl, rtol=1e-12)
    # the posterior really is correlated: L has entries below its diagonal
    assert np.abs(L[:, 1, 0]).min() > 1e-6
    q = model.posterior(x)
    assert isinstance(q, FullGaussian)
    assert np.allclose(q.covariance, cov, rtol=1e-12)


def test_encode_gives_the_log_of_the_marginal_variances():
    model = full_model()
    x, _ = data()
    mu, L = encoder_parts(model, x)
    m, log_var = model.encode(x)
    assert np.allclose(m.numpy(), mu)
    assert np.allclose(log_var.numpy(), np.log(np.diagonal(L @ L.transpose(0, 2, 1), 0, 1, 2)))


def test_importance_weights_use_the_full_log_density():
    model = full_model()
    x, _ = data()
    eps = noise(4, 5, D)  # (K, B, D)
    mu, L = encoder_parts(model, x)
    cov = L @ L.transpose(0, 2, 1)
    z = mu + np.einsum("bij,kbj->kbi", L, eps)  # (K, B, D)
    log_p_z = log_normal_full(z, np.zeros(D), np.eye(D))
    expected = bernoulli_log_lik(model.decode_logits(z).numpy(), x) + log_p_z
    expected -= log_normal_full(z, mu, cov)
    got = model.log_importance_weights(x, 4, eps=eps).numpy()
    assert got.shape == (4, 5)
    assert np.allclose(got, expected, rtol=1e-11)


def test_monte_carlo_kl_and_iwae_read_the_same_posterior():
    x, _ = data()
    eps = noise(3, 5, D)
    analytic, mc = full_model(n_samples=3), full_model(n_samples=3, kl="mc")
    mc.load_state_dict(analytic.state_dict())
    a, m = analytic.elbo(x, eps=eps), mc.elbo(x, eps=eps)
    assert np.allclose(a["recon"].numpy(), m["recon"].numpy(), rtol=1e-12)
    log_w = analytic.log_importance_weights(x, 3, eps=eps).numpy()
    assert np.allclose(m["elbo"].numpy(), log_w.mean(axis=0), rtol=1e-12)  # E_q[log w]
    iwae = full_model(objective="iwae", k=3)
    iwae.load_state_dict(analytic.state_dict())
    loss, stats = iwae.loss(Batch(x), eps=eps)
    top = log_w.max(axis=0)
    bound = top + np.log(np.exp(log_w - top).mean(axis=0))  # log mean_k w_k
    assert loss.item() == pytest.approx(-bound.mean(), rel=1e-12)
    assert stats["iwae"] == pytest.approx(bound.mean(), rel=1e-12)


# ----------------------------------------------------------------------------- the diagonal case


def test_a_new_full_covariance_vae_starts_diagonal():
    # the weights of the entries below L's diagonal start at 0 (the bias is 0 anyway), so the
    # first q is diagonal, not a random full covariance with a variance of about D per unit
    model = tiny("vae", covariance="full", latent=4)
    x, _ = data()
    L = model.posterior(x).L.numpy()  # (B, 4, 4)
    assert np.all(np.tril(L, -1) == 0) and np.all(np.diagonal(L, 0, 1, 2) > 0)
    loss, _ = model.loss(Batch(x))
    loss.backward()
    grad = model.encoder[-1].weight.grad[:, 8:]  # they still learn
    assert np.abs(B.to_numpy(grad)).max() > 0


def full_copy_of(diagonal):
    """A full-covariance VAE whose weights are the diagonal VAE's, with zeros for the entries
    of L below its diagonal: the same q(z | x), written as N(mu, L L^T)."""
    full = full_model()
    state = diagonal.state_dict()
    last = "encoder.layers.2"  # tanh between two Linear layers: Linear, Tanh, Linear
    width = full.posterior_width(full.config)
    for name in (f"{last}.weight", f"{last}.bias"):
        w = state[name]
        padded = np.zeros(w.shape[:-1] + (width,))
        padded[..., : 2 * D] = w  # mu, then v = log sigma^2 = log L_dd^2
        state[name] = padded
    full.load_state_dict(state)
    return full


def test_with_nothing_below_the_diagonal_it_is_the_diagonal_vae():
    diagonal = tiny("vae", n_samples=2)
    full = full_copy_of(diagonal)
    full.n_samples = 2
    x, _ = data()
    eps = noise(2, 5, D)
    for key in ("recon", "kl", "elbo"):
        assert np.allclose(full.elbo(x, eps=eps)[key].numpy(),
                           diagonal.elbo(x, eps=eps)[key].numpy(), rtol=1e-12), key  # fmt: skip
    assert np.allclose(full.log_importance_weights(x, 2, eps=eps).numpy(),
                       diagonal.log_importance_weights(x, 2, eps=eps).numpy(), rtol=1e-12)  # fmt: skip
    for a, b in zip(full.encode(x), diagonal.encode(x)):
        assert np.allclose(a.numpy(), b.numpy(), rtol=1e-12)
    assert full.loss(Batch(x), eps=eps)[0].item() == pytest.approx(
        diagonal.loss(Batch(x), eps=eps)[0].item(), rel=1e-12)  # fmt: skip


# ----------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("options", [{}, {"kl": "mc"}, {"objective": "iwae", "k": 3}],
                         ids=["analytic", "mc", "iwae"])  # fmt: skip
def test_loss_gradients_match_finite_differences(options):
    model = full_model(**options)
    x, _ = data()
    assert_loss_gradients(model, lambda: model.loss(Batch(x))[0])


# ----------------------------------------------------------------------------- configs


def test_config_round_trips_through_json_and_a_checkpoint(tmp_path):
    model = full_model()
    config = json.loads(json.dumps(model.config))
    assert config["covariance"] == "full"
    rebuilt = build_model(config)
    assert rebuilt.covariance == "full" and rebuilt.config == model.config
    rebuilt.load_state_dict(model.state_dict())
    x, _ = data()
    eps = noise(5, D)
    assert np.allclose(rebuilt.elbo(x, eps=eps)["elbo"].numpy(),
                       model.elbo(x, eps=eps)["elbo"].numpy(), rtol=1e-14)  # fmt: skip
    built = {name: tuple(p.shape) for name, p in model.named_parameters()}
    assert parameter_shapes(config) == built  # the checkpoint's shape rule knows "full"
    loaded, _ = load_model(save_checkpoint(tmp_path / "full.npz", model), expect_kind="vae")
    assert loaded.config == model.config
    assert np.allclose(loaded.elbo(x, eps=eps)["elbo"].numpy(),
                       model.elbo(x, eps=eps)["elbo"].numpy(), rtol=1e-14)  # fmt: skip
    assert tiny("vae").config["covariance"] == "diagonal"
    assert "covariance" not in tiny("cvae").config  # its constructor takes no covariance


def test_parameter_count_grows_with_the_square_of_the_latent_size():
    def encoder_outputs(latent, covariance):
        shapes = parameter_shapes({"kind": "vae", "latent": latent, "covariance": covariance})
        return shapes["encoder.layers.2.bias"][0]

    for latent in (2, 8, 32, 128):
        assert encoder_outputs(latent, "diagonal") == 2 * latent
        assert encoder_outputs(latent, "full") == latent + latent * (latent + 1) // 2


def test_bad_options_say_what_to_do():
    with pytest.raises(ValueError, match="covariance must be one of 'diagonal', 'full'"):
        tiny("vae", covariance="banded")
    with pytest.raises(ValueError, match="tc_beta=4.0 needs covariance='diagonal'"):
        full_model(tc_beta=4.0)


# ----------------------------------------------------------------------------- devices


def test_full_covariance_vae_trains_and_evaluates_on_the_device(device):
    from minivae import metrics
    from minivae.optim import Adam

    model = full_model(n_samples=2)  # made on the device under test
    x = B.from_numpy(data()[0])
    before = model.loss(Batch(x))[1]["loss"]
    opt = Adam(model.parameters(), lr=1e-2)
    for _ in range(3):
        loss, _ = model.loss(Batch(x))
        opt.zero_grad()
        loss.backward()
        opt.step()
    for name, p in model.named_parameters():
        assert B.array_device(p.grad) == device, name
    assert math.isfinite(before) and math.isfinite(model.loss(Batch(x))[1]["loss"])
    ll = metrics.importance_sampled_log_likelihood(model, x, k=20, chunk=7)
    assert ll.shape == (5,) and np.all(np.isfinite(ll))
    mu, log_var = model.encode(x)
    assert B.array_device(mu.data) == device and B.array_device(log_var.data) == device
