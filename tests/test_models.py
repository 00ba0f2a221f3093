"""Tests every model shares (the model protocol, configs, shapes, bad input), and the AE and VAE.

The conditional VAE, M2 and the continuous-label model have their own files
(test_cvae.py, test_m2.py with test_m2_fast_path.py, test_ssvae_continuous.py); the
metrics are in test_metrics.py. Models are tiny and run in float64 (model_fixtures.py).
"""

from __future__ import annotations

import json
import math

import pytest
from model_fixtures import X_DIM, assert_loss_gradients, data, tiny, train_batch

import minivae
from minivae import Tensor, metrics
from minivae import backend as B
from minivae import data as D
from minivae.data import Batch
from minivae.distributions import FullGaussian
from minivae.models import (
    MODELS,
    VAE,
    Autoencoder,
    ConditionalVAE,
    SemiSupervisedVAE,
    build_model,
)
from minivae.models.common import BATCH_KINDS

np = B.np


@pytest.fixture(autouse=True)
def _float64():
    with minivae.set_default_dtype("float64"):
        B.manual_seed(7)
        yield


# ----------------------------------------------------------------------------- interface


@pytest.mark.parametrize("kind", list(MODELS))
def test_config_round_trips_through_json_and_build_model(kind):
    model = tiny(kind)
    config = model.config
    assert config["kind"] == kind
    assert json.loads(json.dumps(config)) == config
    rebuilt = build_model(json.loads(json.dumps(config)))
    assert type(rebuilt) is type(model) and rebuilt.config == config
    rebuilt.load_state_dict(model.state_dict())  # the same parameters, by name and shape
    x, y = data()
    if kind == "ae":
        assert np.allclose(rebuilt.elbo(x)["recon"].numpy(), model.elbo(x)["recon"].numpy())
    else:
        eps = np.random.default_rng(1).standard_normal((5, 2))
        yy = None if kind == "vae" else y
        assert np.allclose(rebuilt.elbo(x, yy, eps=eps)["elbo"].numpy(),
                           model.elbo(x, yy, eps=eps)["elbo"].numpy(), rtol=1e-14)  # fmt: skip


def test_every_constructor_argument_is_in_the_config():
    import inspect

    for kind, cls in MODELS.items():
        args = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        assert sorted(args) == sorted(k for k in cls().config if k != "kind"), kind
    with pytest.raises(ValueError, match="unknown model 'gan'.*ae, vae, cvae, m2, ssvae-continuous"):
        build_model({"kind": "gan"})


@pytest.mark.parametrize("kind", ["vae", "cvae", "m2"])
def test_elbo_terms_are_per_example_and_consistent(kind):
    model = tiny(kind, n_samples=3)
    x, y = data()
    terms = model.elbo(x, None if kind == "vae" else y)
    for key in ("recon", "kl", "elbo"):
        assert terms[key].shape == (5,), key
    assert np.allclose(terms["elbo"].numpy(), (terms["recon"] - terms["kl"]).numpy(), rtol=1e-14)
    assert np.all(terms["kl"].numpy() > 0) and np.all(terms["recon"].numpy() < 0)
    if kind == "m2":
        u = model.elbo(x)
        assert u["elbo"].shape == (5,)
        assert np.allclose(u["elbo"].numpy(), (u["recon"] - u["kl"]).numpy(), rtol=1e-14)


@pytest.mark.parametrize("kind", ["vae", "cvae", "m2"])
def test_shapes_of_encode_decode_sample_reconstruct(kind):
    model = tiny(kind)
    x, y = data()
    yy = None if kind == "vae" else y
    mu, log_var = model.encode(x, yy)
    assert mu.shape == log_var.shape == (5, 2)
    probs = model.decode(mu, yy).numpy()
    assert probs.shape == (5, X_DIM) and np.all((probs > 0) & (probs < 1))
    logits = model.decode_logits(mu, yy).numpy()
    assert np.allclose(probs, 1 / (1 + np.exp(-logits)), rtol=1e-13)
    assert model.reconstruct(x, yy).shape == (5, X_DIM)
    assert model.sample(4).shape == (4, X_DIM)
    if kind != "vae":
        assert model.sample(4, y=1).shape == (4, X_DIM)
        assert model.sample(2, y=np.array([0, 2])).shape == (2, X_DIM)


def test_autoencoder():
    ae = tiny("ae", likelihood="mse")
    x, _ = data()
    code, none = ae.encode(x)
    assert code.shape == (5, 2) and none is None
    loss, stats = ae.loss(Batch(x))
    x_hat = ae.reconstruct(x).numpy()
    assert loss.item() == pytest.approx(((x_hat - x) ** 2).sum(axis=1).mean(), rel=1e-13)
    assert set(stats) == {"recon", "loss"} and stats["loss"] == pytest.approx(-stats["recon"])
    assert ae.sample(3).shape == (3, X_DIM)
    bern = tiny("ae")
    _, stats = bern.loss(Batch(x))
    logits = bern.decode_logits(bern.code(x)).numpy()
    nll = (np.logaddexp(0, logits) - x * logits).sum(axis=1).mean()
    assert stats["loss"] == pytest.approx(nll, rel=1e-12)


# ----------------------------------------------------------------------------- the protocol


@pytest.mark.parametrize("kind", list(MODELS))
def test_every_model_trains_on_a_batch_of_its_batch_kind(kind):
    model = tiny(kind)
    assert type(model).batch_kind in BATCH_KINDS
    loss, stats = model.loss(train_batch(kind), kl_weight=0.5)
    assert loss.shape == () and stats["loss"] == pytest.approx(loss.item())
    assert all(isinstance(v, float) and math.isfinite(v) for v in stats.values())
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    with pytest.raises(TypeError, match="take a minivae.data.Batch, got ndarray"):
        model.loss(data()[0])  # bare images: the message says how to wrap them


@pytest.mark.parametrize("kind", list(MODELS))
def test_evaluate_returns_per_example_floats_without_a_graph(kind):
    model = tiny(kind)
    x, y = data(6)
    labels = {"cvae": y, "m2": y, "ssvae-continuous": np.linspace(-1, 1, 6)[:, None]}.get(kind)
    with minivae.no_grad():
        out = model.evaluate(Batch(x, labels))
    assert out and all(isinstance(v, float) and math.isfinite(v) for v in out.values())
    assert ("elbo" in out) == (kind != "ae")


@pytest.mark.parametrize("kind", list(MODELS))
def test_figure_samples_are_images_of_the_models_width_or_a_clear_refusal(kind):
    model = tiny(kind)
    if not type(model).has_prior:
        with pytest.raises(ValueError, match="no prior to sample from"):
            model.figure_samples(4)
        return
    images, caption, cols = model.figure_samples(10)
    assert isinstance(images, Tensor) and images.shape == (10, X_DIM) and caption
    assert 1 <= cols <= 10
    if kind in ("vae",):
        with pytest.raises(ValueError, match="not conditioned on a label"):
            model.figure_samples(4, label=1)
    else:
        assert model.figure_samples(4, label=1)[0].shape == (4, X_DIM)


def test_config_from_reads_generic_options_and_the_data_sets_info():
    info = D.dataset_info("shapes")  # 32 x 32 images, 3 classes
    options = {"hidden": [8], "latent": 3, "beta": None, "tc_beta": None, "likelihood": "gaussian",
               "sigma": None}  # fmt: skip
    vae = MODELS["vae"].config_from(options, info)
    assert vae["x_dim"] == 1024 and vae["hidden"] == [8] and "beta" not in vae
    assert vae["learned_sigma"] is True  # a Gaussian decoder without sigma learns it
    cvae = MODELS["cvae"].config_from({"latent": 3}, info)
    assert cvae["n_classes"] == 3 and build_model(cvae).n_classes == 3
    ae = MODELS["ae"].config_from({"likelihood": "gaussian"}, info)
    assert ae["likelihood"] == "mse"  # the autoencoder's Gaussian loss is the squared error
    with pytest.raises(ValueError, match="ae: takes no option 'beta'"):
        MODELS["ae"].config_from({"beta": 2.0}, info)


def test_data_hooks_of_the_class_and_semi_supervised_models():
    ds = D.make_shapes(40, seed=1)
    assert MODELS["vae"].dataset_labels(ds, {}) is None
    np.testing.assert_array_equal(MODELS["cvae"].dataset_labels(ds, {}), ds.labels)
    labelled = np.arange(0, 40, 4)
    assert MODELS["m2"].data_config(ds, labelled) == {"n_labelled": 10, "n_total": 40}
    cont = MODELS["ssvae-continuous"]
    config = cont.data_config(ds, labelled)
    for cls in MODELS.values():  # a resume compares every other entry before loading the data
        assert set(cls.data_config(ds, labelled)) == set(cls.DATA_CONFIG_KEYS), cls.kind
    slants = D.slant_degrees(ds.images[labelled], ds.image_shape)
    assert config == pytest.approx({"label_mean": slants.mean(), "label_std": slants.std()})
    y = cont.dataset_labels(ds, config)  # standardized: the labelled rows have mean 0, std 1
    assert y.shape == (40, 1)
    assert y[labelled].mean() == pytest.approx(0.0, abs=1e-9)
    assert y[labelled].std() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="label_dim must be 1"):
        cont.dataset_labels(ds, {**config, "label_dim": 2})


# ----------------------------------------------------------------------------- losses


def test_loss_is_the_beta_weighted_negative_elbo():
    model = tiny("vae", beta=4.0, n_samples=2)
    x, _ = data()
    eps = np.random.default_rng(2).standard_normal((2, 5, 2))
    terms = model.elbo(x, eps=eps)
    loss, stats = model.loss(Batch(x), kl_weight=0.5, eps=eps)
    recon, kl = terms["recon"].numpy(), terms["kl"].numpy()
    assert loss.item() == pytest.approx(-(recon - 4.0 * 0.5 * kl).mean(), rel=1e-13)
    # the reported elbo is the true bound (beta = 1), whatever beta and the warm-up weight
    assert stats["elbo"] == pytest.approx((recon - kl).mean(), rel=1e-13)
    assert stats["loss"] == pytest.approx(loss.item(), rel=1e-14)
    assert set(stats) == {"elbo", "recon", "kl", "loss"}


def test_monte_carlo_kl_agrees_with_the_analytic_one():
    analytic = tiny("vae")
    mc = tiny("vae", kl="mc", n_samples=20_000)
    mc.load_state_dict(analytic.state_dict())
    x, _ = data()
    exact = analytic.elbo(x)["kl"].numpy()
    estimate = mc.elbo(x)["kl"].numpy()
    # std of log q - log p per sample is O(1) here, so 20000 samples give ~0.01
    assert np.max(np.abs(estimate - exact)) < 0.05
    assert not np.allclose(estimate, exact, rtol=1e-8)  # it really is a Monte-Carlo estimate


def test_iwae_objective_is_at_least_the_elbo_and_equals_it_for_one_sample():
    model = tiny("vae", objective="iwae", k=8)
    x, _ = data()
    _, stats = model.loss(Batch(x))
    assert stats["iwae"] >= stats["elbo"]  # Jensen, for the same samples
    eps = np.random.default_rng(3).standard_normal((1, 5, 2))
    loss, stats = model.loss(Batch(x), eps=eps)  # k = 1: log mean_k w_k = log w_1
    mc = tiny("vae", kl="mc")
    mc.load_state_dict(model.state_dict())
    assert loss.item() == pytest.approx(-mc.elbo(x, eps=eps)["elbo"].numpy().mean(), rel=1e-13)
    bound = metrics.iwae_bound(model, x, k=8)
    assert bound.shape == (5,) and bound.requires_grad


def test_iwae_bound_with_k_equal_noise_draws_is_the_one_sample_bound():
    """log (1/K) sum_k w_k with w_1 = ... = w_K is log w_1: the bound's - log K shows here."""
    model = tiny("vae", objective="iwae", k=5)
    x, _ = data()
    one = np.random.default_rng(12).standard_normal((1, 5, 2))  # (1, B, latent)
    loss_k, stats_k = model.loss(Batch(x), eps=np.repeat(one, 5, axis=0))  # K equal draws
    log_w = model.log_importance_weights(x, 1, eps=one).numpy()[0]  # (B,): log w_1
    assert loss_k.item() == pytest.approx(-log_w.mean(), rel=1e-12)
    assert stats_k["iwae"] == pytest.approx(log_w.mean(), rel=1e-12)


def test_iwae_bound_is_the_log_mean_exp_of_the_importance_weights():
    model = tiny("vae", objective="iwae", k=7)
    x, _ = data()
    eps = np.random.default_rng(13).standard_normal((7, 5, 2))  # K different draws
    loss, stats = model.loss(Batch(x), eps=eps)
    log_w = model.log_importance_weights(x, 7, eps=eps).numpy()  # (K, B), the same z_k
    m = log_w.max(axis=0)
    log_mean_w = m + np.log(np.exp(log_w - m).sum(axis=0)) - math.log(7)  # (B,)
    assert loss.item() == pytest.approx(-log_mean_w.mean(), rel=1e-12)
    assert stats["iwae"] == pytest.approx(log_mean_w.mean(), rel=1e-12)
    assert stats["elbo"] == pytest.approx(log_w.mean(), rel=1e-12)  # the k-sample ELBO
    assert stats["iwae"] > stats["elbo"]  # Jensen: distinct draws make the bound tighter


def test_gaussian_decoder_sigma_is_the_lectures_alpha():
    # -log N(x | g, s^2 I) = ||x - g||^2 / (2 s^2) + D/2 log(2 pi s^2): alpha = 1 / (2 s^2)
    s = 0.25
    model = tiny("vae", likelihood="gaussian", sigma=s)
    x, _ = data()
    zeros = np.zeros((5, 2))
    recon = model.elbo(x, eps=zeros)["recon"].numpy()
    g = model.decode(model.encode(x)[0]).numpy()
    alpha = 1 / (2 * s**2)
    expected = -(alpha * ((x - g) ** 2).sum(axis=1) + X_DIM / 2 * math.log(2 * math.pi * s**2))
    assert np.allclose(recon, expected, rtol=1e-13)
    learned = tiny("vae", likelihood="gaussian", learned_sigma=True, sigma=s)
    assert "decoder_log_var" in dict(learned.named_parameters())
    assert learned.decoder_log_var.numpy()[0] == pytest.approx(2 * math.log(s))


def test_a_per_unit_learned_sigma_weighs_each_dimension_by_its_own_variance():
    """learned_sigma="per_unit": log sigma_d^2 of shape (x_dim,), and the likelihood is
    sum_d log N(x_d | g_d, sigma_d^2), checked by hand with unequal sigmas."""
    model = tiny("vae", likelihood="gaussian", learned_sigma="per_unit", sigma=0.5)
    log_var = model.decoder_log_var.numpy()
    assert log_var.shape == (X_DIM,) and np.allclose(log_var, 2 * math.log(0.5))
    assert dict(model.named_parameters())["decoder_log_var"] is model.decoder_log_var
    log_var = np.linspace(-2.0, 1.0, X_DIM)
    model.decoder_log_var.data[:] = log_var
    x, _ = data()
    zeros = np.zeros((5, 2))
    recon = model.elbo(x, eps=zeros)["recon"].numpy()
    g = model.decode(model.encode(x)[0]).numpy()
    expected = -0.5 * (((x - g) ** 2) / np.exp(log_var) + log_var + math.log(2 * math.pi)).sum(axis=1)
    assert np.allclose(recon, expected, rtol=1e-12)
    assert model.config["learned_sigma"] == "per_unit"
    assert_loss_gradients(model, lambda: model.loss(Batch(x))[0])


@pytest.mark.parametrize("value", ["per-unit", 2, 0.5])
def test_learned_sigma_refuses_other_values(value):
    with pytest.raises(ValueError, match=r"learned_sigma must be one of False, True, 'per_unit'"):
        tiny("vae", likelihood="gaussian", learned_sigma=value)
    with pytest.raises(ValueError, match=r"learned_sigma='per_unit' only applies to likelihood='gaussian'"):
        tiny("vae", learned_sigma="per_unit")


# ----------------------------------------------------------------------------- gradient checks, end to end


@pytest.mark.parametrize("options", [{}, {"kl": "mc", "n_samples": 2}, {"beta": 3.0}])
def test_vae_loss_gradients(options):
    model = tiny("vae", **options)
    x, _ = data()
    assert_loss_gradients(model, lambda: model.loss(Batch(x), kl_weight=0.7)[0])


def test_gaussian_vae_with_learned_sigma_and_iwae_gradients():
    model = tiny("vae", likelihood="gaussian", learned_sigma=True, sigma=0.7)
    x, _ = data()
    assert_loss_gradients(model, lambda: model.loss(Batch(x))[0])
    model = tiny("vae", objective="iwae", k=3)
    assert_loss_gradients(model, lambda: model.loss(Batch(x))[0])


def test_ae_loss_gradients():
    model = tiny("ae", likelihood="mse")
    x, _ = data()
    assert_loss_gradients(model, lambda: model.loss(Batch(x))[0])


# ----------------------------------------------------------------------------- beta-TCVAE


@pytest.mark.parametrize("kind", ["vae", "cvae"])
def test_tc_beta_adds_the_weighted_total_correlation_to_the_loss(kind):
    from minivae.distributions import DiagonalGaussian, total_correlation

    model = tiny(kind, tc_beta=6.0, beta=1.5)
    x, y = data(7)
    eps = np.random.default_rng(8).standard_normal((7, 2))
    loss, stats = model.loss(Batch(x, y), kl_weight=0.5, eps=eps)
    terms = model.elbo(x, y, eps=eps)
    mu, log_var = model.encode(x, y)
    q = DiagonalGaussian(mu, log_var)
    tc = total_correlation(q.sample(eps=eps), q).numpy()
    by_hand = -(terms["recon"].numpy() - 1.5 * 0.5 * terms["kl"].numpy() - 5.0 * tc).mean()
    assert loss.item() == pytest.approx(by_hand, rel=1e-12)
    assert stats["tc"] == pytest.approx(tc.mean(), rel=1e-12)
    assert_loss_gradients(model, lambda: model.loss(Batch(x, y))[0])
    # tc_beta = 1 is the plain loss, with no "tc" in the stats
    plain = tiny(kind, beta=1.5)
    plain.load_state_dict(model.state_dict())
    loss1, stats1 = plain.loss(Batch(x, y), kl_weight=0.5, eps=eps)
    assert "tc" not in stats1
    assert loss1.item() == pytest.approx(-(terms["recon"].numpy()
                                           - 0.75 * terms["kl"].numpy()).mean(), rel=1e-12)


def test_tc_beta_is_kept_in_the_config_and_refused_with_iwae():
    model = tiny("vae", tc_beta=4.0)
    assert model.config["tc_beta"] == 4.0 and build_model(model.config).tc_beta == 4.0
    assert "tc_beta" not in tiny("m2").config  # M2 trains on its own bound
    with pytest.raises(ValueError, match="tc_beta=4.0 needs objective='elbo'"):
        tiny("vae", tc_beta=4.0, objective="iwae")
    with pytest.raises(ValueError, match="tc_beta must be a number >= 0"):
        tiny("vae", tc_beta=-1.0)


# ----------------------------------------------------------------------------- controlled capacity


@pytest.mark.parametrize("kl_weight", [0.25, 1.0])
def test_capacity_loss_is_recon_plus_beta_times_the_rates_distance_to_its_target(kl_weight):
    """Burgess et al. 2018, eq. 8: -mean recon + beta |mean KL - c|, c = kl_weight * C."""
    model = tiny("vae", beta=40.0, capacity=3.0)
    x, _ = data(7)
    eps = np.random.default_rng(8).standard_normal((7, 2))
    loss, stats = model.loss(Batch(x), kl_weight=kl_weight, eps=eps)
    terms = model.elbo(x, eps=eps)
    recon, kl = terms["recon"].numpy().mean(), terms["kl"].numpy().mean()
    c = kl_weight * 3.0
    assert loss.item() == pytest.approx(-recon + 40.0 * abs(kl - c), rel=1e-12)
    assert stats["capacity"] == c and stats["kl"] == pytest.approx(kl, rel=1e-12)
    assert_loss_gradients(model, lambda: model.loss(Batch(x), kl_weight=kl_weight)[0])


def test_capacity_pulls_the_rate_towards_its_target_from_both_sides():
    """The KL's gradient flips sign with the side of c the rate is on (d|u|/du = sign u)."""
    model = tiny("vae", beta=1.0, capacity=1.0)
    x, _ = data(7)
    eps = np.random.default_rng(8).standard_normal((7, 2))
    kl = model.elbo(x, eps=eps)["kl"].numpy().mean()
    below, above = 0.5 * kl, 2.0 * kl  # targets c that put the rate above and below them
    grads = []
    for c in (below, above):
        model.zero_grad()
        model.loss(Batch(x), kl_weight=c / model.capacity, eps=eps)[0].backward()
        grads.append(model.encoder.layers[-1].bias.grad.copy())
    plain = tiny("vae", beta=1.0)
    plain.load_state_dict(model.state_dict())
    plain.zero_grad()
    plain.loss(Batch(x), eps=eps)[0].backward()  # -recon + KL: the KL's gradient with sign +1
    recon_only = tiny("vae", beta=0.0)
    recon_only.load_state_dict(model.state_dict())
    recon_only.zero_grad()
    recon_only.loss(Batch(x), eps=eps)[0].backward()
    g_kl = plain.encoder.layers[-1].bias.grad - recon_only.encoder.layers[-1].bias.grad
    g_recon = recon_only.encoder.layers[-1].bias.grad
    np.testing.assert_allclose(grads[0], g_recon + g_kl, rtol=1e-10, atol=1e-12)  # rate > c
    np.testing.assert_allclose(grads[1], g_recon - g_kl, rtol=1e-10, atol=1e-12)  # rate < c


def test_capacity_is_kept_in_the_config_and_checked():
    model = tiny("vae", capacity=12.5)
    assert model.config["capacity"] == 12.5 and build_model(model.config).capacity == 12.5
    assert tiny("vae").config["capacity"] is None
    assert "capacity" not in tiny("cvae").config  # the conditional models keep the plain bound
    for bad in (0.0, -1.0, float("inf"), True, "5"):
        with pytest.raises(ValueError, match=r"capacity \(nats\) must be a finite number > 0"):
            tiny("vae", capacity=bad)
    with pytest.raises(ValueError, match="capacity=5.0 needs objective='elbo' and tc_beta=1"):
        tiny("vae", capacity=5.0, tc_beta=3.0)
    with pytest.raises(ValueError, match="capacity=5.0 needs objective='elbo'"):
        tiny("vae", capacity=5.0, objective="iwae")


def test_the_vaes_init_is_kept_in_the_config_and_checked():
    model = tiny("vae", init="uniform")
    assert model.config["init"] == "uniform" and build_model(model.config).init == "uniform"
    first = model.encoder.layers[0]  # U(-1/sqrt(n_in), 1/sqrt(n_in)), biases too
    assert np.abs(first.weight.numpy()).max() <= 1 / np.sqrt(first.n_in)
    assert first.bias.numpy().any() and not tiny("vae").encoder.layers[0].bias.numpy().any()
    old = {k: v for k, v in tiny("vae").config.items() if k != "init"}  # an older checkpoint's
    assert build_model(old).init is None  # He for relu, as before the option existed
    assert "init" not in tiny("cvae").config  # the conditional models keep the default
    with pytest.raises(ValueError, match="init must be one of"):
        tiny("vae", init="lecun")


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("kind", ["cvae", "m2"])
def test_labels_outside_the_classes_are_rejected(kind):
    model = tiny(kind)
    x, _ = data(3)
    for bad, labels in ((3, [0, 3, 1]), (-1, [0, -1, 1])):
        with pytest.raises(ValueError, match=rf"label {bad} .*\[0, 3\)"):
            model.elbo(x, np.array(labels))
    with pytest.raises(ValueError, match="float"):
        model.elbo(x, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"\(2,\)"):
        model.elbo(x, np.array([0, 1]))
    with pytest.raises(ValueError, match="label 7"):
        model.sample(2, y=7)


@pytest.mark.parametrize("kind", list(MODELS))
def test_inputs_of_the_wrong_width_are_rejected(kind):
    model = tiny(kind)
    x = np.zeros((2, X_DIM - 1))
    with pytest.raises(ValueError, match=rf"width {X_DIM - 1}.*x_dim={X_DIM}"):
        model.loss(Batch(x, np.zeros(2, dtype=np.int64) if kind == "cvae" else None))


@pytest.mark.parametrize(
    ("cls", "kwargs", "shown"),
    [
        (ConditionalVAE, {"n_classes": 0}, "n_classes.*got 0"),
        (SemiSupervisedVAE, {"n_classes": -2}, "n_classes.*got -2"),
        (VAE, {"beta": -0.5}, "beta.*got -0.5"),
        (VAE, {"likelihood": "gaussian", "sigma": 0.0}, "sigma.*> 0.*got 0.0"),
        (VAE, {"likelihood": "gaussian", "sigma": -1.0}, "sigma.*got -1.0"),
        (VAE, {"likelihood": "gaussian", "sigma": float("inf")}, "sigma.*finite.*got inf"),
        (VAE, {"sigma": 0.5}, "sigma=0.5 only applies"),
        (VAE, {"n_samples": 0}, "n_samples.*got 0"),
        (VAE, {"latent": 0}, "latent.*got 0"),
        (VAE, {"k": 0}, "k must.*got 0"),
        (VAE, {"likelihood": "poisson"}, "'poisson'"),
        (VAE, {"kl": "exact"}, "'exact'"),
        (VAE, {"hidden": [4, 0]}, "got 0"),
        (Autoencoder, {"likelihood": "l1"}, "'l1'"),
        (SemiSupervisedVAE, {"alpha": -1.0}, "alpha.*got -1.0"),
        (SemiSupervisedVAE, {"n_labelled": 10, "n_total": 5}, "n_labelled=10 exceeds n_total=5"),
    ],
)
def test_bad_constructor_arguments_name_the_value_and_the_range(cls, kwargs, shown):
    with pytest.raises(ValueError, match=shown):
        cls(**kwargs)


def test_bad_call_arguments():
    model = tiny("vae")
    x, _ = data()
    with pytest.raises(ValueError, match="kl_weight.*got -1"):
        model.loss(Batch(x), kl_weight=-1)
    with pytest.raises(ValueError, match="n must.*got 0"):
        model.sample(0)
    with pytest.raises(ValueError, match="got 0"):
        model.log_importance_weights(x, 0)


# ----------------------------------------------------------------------------- devices


@pytest.mark.parametrize("kind", ["vae", "cvae", "m2"])
def test_models_train_and_evaluate_on_the_device(device, kind):
    model = tiny(kind, n_samples=2)  # made on the device under test
    x_host, y_host = data()
    x, y = B.from_numpy(x_host), B.from_numpy(y_host)
    batch = Batch(x, x_labelled=x, y_labelled=y) if kind == "m2" else Batch(x, y)
    loss, stats = model.loss(batch)
    loss.backward()
    assert math.isfinite(stats["loss"])
    for name, p in model.named_parameters():
        assert B.array_device(p.grad) == device, name
    ll = metrics.importance_sampled_log_likelihood(model, x, k=20, chunk=7,
                                                   y=None if kind != "cvae" else y)  # fmt: skip
    assert ll.shape == (5,) and np.all(np.isfinite(ll))
    if kind == "m2":
        assert B.array_device(model.classify(x)) == device


def test_full_covariance_ops_on_the_device(device):
    rng = np.random.default_rng(9)
    mu = Tensor(B.from_numpy(rng.standard_normal((3, 4))), requires_grad=True)
    log_diag = Tensor(B.from_numpy(0.3 * rng.standard_normal((3, 4))), requires_grad=True)
    offdiag = Tensor(B.from_numpy(rng.standard_normal((3, 6))), requires_grad=True)
    q = FullGaussian.from_unconstrained(mu, log_diag, offdiag)
    z = q.sample(5)
    (q.log_prob(z).sum() + q.kl_to_standard().sum()).backward()
    for t in (mu, log_diag, offdiag):
        assert B.array_device(t.grad) == device and bool(B.xp.isfinite(t.grad).all())


@pytest.mark.parametrize("kind", ["ae", "vae", "cvae", "m2"])
def test_inputs_that_are_not_a_batch_of_intensities_are_refused_with_the_fix(kind):
    model = tiny(kind)
    x, y = data(4)
    batch = train_batch(kind, n=4)
    raw = (x * 255).astype(np.uint8)  # 8-bit pixels, not divided by 255
    with pytest.raises(ValueError, match=r"integers up to 255.*divide 8-bit images by 255"):
        model.loss(Batch(raw, y if kind == "cvae" else None) if kind != "m2"
                   else Batch(raw, x_labelled=batch.x_labelled, y_labelled=batch.y_labelled))
    with pytest.raises(ValueError, match=r"one example\? Give a batch of one: x.reshape\(1, -1\)"):
        model.reconstruct(x[0]) if kind in ("ae", "vae") else model.reconstruct(x[0], y[:1])
    model.loss(batch)  # 0/1 integers are intensities: no error
    if kind in ("ae", "vae"):
        model.loss(Batch(x.astype(np.int64)))


@pytest.mark.parametrize("kind", ["m2", "ssvae-continuous"])
def test_a_semi_supervised_loss_refuses_labels_it_would_drop(kind):
    model = tiny(kind) if kind == "m2" else MODELS[kind](x_dim=X_DIM, hidden=[4], latent=2)
    x, y = data(4)
    labels = y if kind == "m2" else np.zeros((4, 1))
    with pytest.raises(ValueError, match=r"x_labelled=x, y_labelled=y"):
        model.loss(Batch(x, labels))
