"""Tests of the model family (AE, VAE, beta-VAE, CVAE, M2), their shared interface, and metrics.

Models here are tiny (a handful of inputs, a few hidden units) and run in float64,
so gradient checks of whole losses take milliseconds.
"""

from __future__ import annotations

import importlib
import json
import math

import pytest

import minivae
from minivae import Tensor, metrics
from minivae import backend as B
from minivae.distributions import FullGaussian
from minivae.gradcheck import gradcheck
from minivae.models import (
    MODELS,
    VAE,
    Autoencoder,
    ConditionalVAE,
    SemiSupervisedVAE,
    build_model,
)

np = B.np
X_DIM, C = 6, 3
TINY = {"x_dim": X_DIM, "hidden": [4], "latent": 2, "activation": "tanh"}


@pytest.fixture(autouse=True)
def _float64():
    with minivae.set_default_dtype("float64"):
        B.manual_seed(7)
        yield


def tiny(kind: str, **kwargs):
    extra = {"n_classes": C} if kind in ("cvae", "m2") else {}
    if kind == "m2":
        extra["alpha"] = 2.0
    return MODELS[kind](**{**TINY, **extra, **kwargs})


def data(n=5, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.random((n, X_DIM)) > 0.5).astype(np.float64)
    y = rng.integers(0, C, n)
    return x, y


def set_parameter(model, name: str, tensor: Tensor) -> None:
    """Put ``tensor`` in place of the parameter called ``name`` (a dotted path)."""
    *path, last = name.split(".")
    obj = model
    for part in path:
        obj = obj[int(part)] if isinstance(obj, list) else getattr(obj, part)
    setattr(obj, last, tensor)


def assert_loss_gradients(model, compute_loss):
    """gradcheck of a scalar loss with respect to every parameter, with the noise fixed."""
    names = [name for name, _ in model.named_parameters()]
    values = [p.data.copy() for _, p in model.named_parameters()]

    def fn(*params):
        for name, p in zip(names, params):
            set_parameter(model, name, p)
        B.manual_seed(3)  # the same eps at every evaluation
        return compute_loss()

    report = gradcheck(fn, values, names=names, mode="full", max_full=10_000)
    assert report.ok, str(report)
    assert report.checked >= sum(v.size for v in values)


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
    with pytest.raises(ValueError, match="'gan'"):
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
    loss, stats = ae.loss(x)
    x_hat = ae.reconstruct(x).numpy()
    assert loss.item() == pytest.approx(((x_hat - x) ** 2).sum(axis=1).mean(), rel=1e-13)
    assert set(stats) == {"recon", "loss"} and stats["loss"] == pytest.approx(-stats["recon"])
    assert ae.sample(3).shape == (3, X_DIM)
    bern = tiny("ae")
    _, stats = bern.loss(x)
    logits = bern.decode_logits(bern.code(x)).numpy()
    nll = (np.logaddexp(0, logits) - x * logits).sum(axis=1).mean()
    assert stats["loss"] == pytest.approx(nll, rel=1e-12)


# ----------------------------------------------------------------------------- losses


def test_loss_is_the_beta_weighted_negative_elbo():
    model = tiny("vae", beta=4.0, n_samples=2)
    x, _ = data()
    eps = np.random.default_rng(2).standard_normal((2, 5, 2))
    terms = model.elbo(x, eps=eps)
    loss, stats = model.loss(x, kl_weight=0.5, eps=eps)
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
    _, stats = model.loss(x)
    assert stats["iwae"] >= stats["elbo"]  # Jensen, for the same samples
    eps = np.random.default_rng(3).standard_normal((1, 5, 2))
    loss, stats = model.loss(x, eps=eps)  # k = 1: log mean_k w_k = log w_1
    mc = tiny("vae", kl="mc")
    mc.load_state_dict(model.state_dict())
    assert loss.item() == pytest.approx(-mc.elbo(x, eps=eps)["elbo"].numpy().mean(), rel=1e-13)
    bound = metrics.iwae_bound(model, x, k=8)
    assert bound.shape == (5,) and bound.requires_grad


def test_gaussian_decoder_sigma_is_seed_000s_alpha():
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


# ----------------------------------------------------------------------------- gradient checks, end to end


@pytest.mark.parametrize("options", [{}, {"kl": "mc", "n_samples": 2}, {"beta": 3.0}])
def test_vae_loss_gradients(options):
    model = tiny("vae", **options)
    x, _ = data()
    assert_loss_gradients(model, lambda: model.loss(x, kl_weight=0.7)[0])


def test_gaussian_vae_with_learned_sigma_and_iwae_gradients():
    model = tiny("vae", likelihood="gaussian", learned_sigma=True, sigma=0.7)
    x, _ = data()
    assert_loss_gradients(model, lambda: model.loss(x)[0])
    model = tiny("vae", objective="iwae", k=3)
    assert_loss_gradients(model, lambda: model.loss(x)[0])


def test_cvae_loss_gradients():
    model = tiny("cvae")
    x, y = data()
    assert_loss_gradients(model, lambda: model.loss(x, y)[0])


@pytest.mark.parametrize("sum_over_y", [True, False])
def test_m2_loss_gradients(sum_over_y):
    model = tiny("m2", sum_over_y=sum_over_y)
    x, y = data()
    xu, _ = data(4, seed=1)
    assert_loss_gradients(model, lambda: model.loss(xu, x, y, kl_weight=0.5)[0])


def test_ae_loss_gradients():
    model = tiny("ae", likelihood="mse")
    x, _ = data()
    assert_loss_gradients(model, lambda: model.loss(x)[0])


# ----------------------------------------------------------------------------- beta-TCVAE


@pytest.mark.parametrize("kind", ["vae", "cvae"])
def test_tc_beta_adds_the_weighted_total_correlation_to_the_loss(kind):
    from minivae.distributions import DiagonalGaussian, total_correlation

    model = tiny(kind, tc_beta=6.0, beta=1.5)
    x, y = data(7)
    eps = np.random.default_rng(8).standard_normal((7, 2))
    loss, stats = model.loss(x, y, kl_weight=0.5, eps=eps)
    terms = model.elbo(x, y, eps=eps)
    mu, log_var = model.encode(x, y)
    q = DiagonalGaussian(mu, log_var)
    tc = total_correlation(q.sample(eps=eps), q).numpy()
    by_hand = -(terms["recon"].numpy() - 1.5 * 0.5 * terms["kl"].numpy() - 5.0 * tc).mean()
    assert loss.item() == pytest.approx(by_hand, rel=1e-12)
    assert stats["tc"] == pytest.approx(tc.mean(), rel=1e-12)
    assert_loss_gradients(model, lambda: model.loss(x, y)[0])
    # tc_beta = 1 is the plain loss, with no "tc" in the stats
    plain = tiny(kind, beta=1.5)
    plain.load_state_dict(model.state_dict())
    loss1, stats1 = plain.loss(x, y, kl_weight=0.5, eps=eps)
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


# ----------------------------------------------------------------------------- M2


def test_m2_objective_combines_the_bounds_as_documented():
    model = tiny("m2")
    xl, yl = data(5)
    xu, _ = data(4, seed=1)
    B.manual_seed(11)
    loss, stats = model.loss(xu, xl, yl)
    B.manual_seed(11)  # the same noise, drawn in the same order: labelled first
    lab = model.elbo(xl, yl)
    unl = model.elbo(xu)
    logits = model.classifier_logits(xl).numpy()
    log_q = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    log_q_y = log_q[np.arange(5), yl]
    J = lab["elbo"].numpy().sum() + 2.0 * log_q_y.sum() + unl["elbo"].numpy().sum()
    assert loss.item() == pytest.approx(-J / 9, rel=1e-12)
    assert stats["classification_loss"] == pytest.approx(-log_q_y.mean(), rel=1e-12)
    assert stats["labelled_elbo"] == pytest.approx(lab["elbo"].numpy().mean(), rel=1e-12)
    assert stats["unlabelled_elbo"] == pytest.approx(unl["elbo"].numpy().mean(), rel=1e-12)
    everything = np.concatenate([lab["elbo"].numpy(), unl["elbo"].numpy()])
    assert stats["elbo"] == pytest.approx(everything.mean(), rel=1e-12)


def test_m2_alpha_default_and_ablation():
    model = tiny("m2", alpha=None, n_labelled=100, n_total=50_000)
    assert model.classification_weight == pytest.approx(0.1 * 50_000 / 100)
    x, y = data()
    default = tiny("m2", alpha=None)
    assert default.classification_weight == pytest.approx(50.0)  # 0.1 * 50000 / 100, announced
    assert default.loss(None, x, y)[1]["alpha"] == pytest.approx(50.0)
    # alpha = 0: labelled data alone give the classifier no gradient
    model = tiny("m2", alpha=0)
    loss, _ = model.loss(None, x, y)
    loss.backward()
    assert all(p.grad is None or not np.any(p.grad) for p in model.classifier.parameters())
    assert any(np.any(p.grad) for p in model.encoder.parameters())
    model = tiny("m2", alpha=1.0)
    loss, _ = model.loss(None, x, y)
    loss.backward()
    assert all(np.any(p.grad) for p in model.classifier.parameters())


def test_m2_sampled_y_estimates_the_exact_unlabelled_bound():
    exact_model = tiny("m2")
    sampled = tiny("m2", sum_over_y=False)
    sampled.load_state_dict(exact_model.state_dict())
    x, _ = data(3)
    eps = np.random.default_rng(5).standard_normal((3, 2))
    exact = exact_model.elbo(x, eps=eps)["elbo"].numpy()
    draws = np.stack([sampled.elbo(x, eps=eps)["elbo"].numpy() for _ in range(400)])
    se = draws.std(axis=0) / math.sqrt(len(draws))
    assert np.all(se > 0)  # the label really is sampled
    assert np.all(np.abs(draws.mean(axis=0) - exact) < 4 * se + 1e-12)


def confident(model, margin: float):
    """Make q(y|x) = softmax(0, -margin, -margin, ...) for every x: class 0 all but certain."""
    last = model.classifier.layers[-1]
    last.weight.data[...] = 0.0
    last.bias.data[...] = -margin
    last.bias.data[0] = 0.0


def test_m2_class_weights_zero_only_what_the_sum_cannot_hold():
    from minivae.models.m2 import class_weights

    floor = np.finfo(np.float64).eps ** 2  # 4.9e-32
    q = Tensor(np.array([[1.0, 0.3, 1e-20], [2 * floor, 0.5 * floor, 0.0]]), requires_grad=True)
    w = class_weights(q)
    np.testing.assert_array_equal(w.numpy(), [[1.0, 0.3, 1e-20], [2 * floor, 0.0, 0.0]])
    w.sum().backward()
    np.testing.assert_array_equal(q.grad, [[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])


def test_m2_negligible_classes_leave_the_bound_and_give_the_decoder_no_gradient():
    """With q(y|x) = e^-100 for classes 1 and 2, U(x) is L(x, 0) + H and only class 0's rows
    of the decoder pass reach its weights; the value is the plain sum over all classes."""
    model = tiny("m2")
    confident(model, 100.0)
    x, _ = data(4)
    eps = np.random.default_rng(3).standard_normal((4, 2))
    recon_c, kl_c = model._all_classes_tiled(x, eps)  # (C, B), every class
    log_q = np.array([0.0, -100.0, -100.0]) - np.log1p(2 * np.exp(-100.0))
    q = np.exp(log_q)[:, None]  # (C, 1), the same for every x
    plain = (q * (recon_c.numpy() - kl_c.numpy())).sum(axis=0) - (q * log_q[:, None]).sum(axis=0)
    plain += model.log_prior_y
    unlabelled = model.elbo(x, eps=eps)["elbo"]
    np.testing.assert_allclose(unlabelled.numpy(), plain, rtol=1e-13)
    unlabelled.sum().backward()
    u_grads = {n: p.grad.copy() for n, p in model.named_parameters() if n.startswith("decoder")}
    model.zero_grad()
    model.elbo(x, np.zeros(4, dtype=np.int64), eps=eps)["elbo"].sum().backward()  # L(x, 0)
    for name, grad in u_grads.items():
        np.testing.assert_allclose(grad, dict(model.named_parameters())[name].grad, rtol=1e-12,
                                   atol=1e-300, err_msg=name)


def test_m2_confident_classifier_puts_no_subnormal_numbers_into_the_backward(monkeypatch):
    """float32, q(y|x) = e^-85 for the wrong classes (a normal number): without the zeroed
    weights their decoder rows' gradients underflow to subnormals, which slow every product."""
    from minivae.models import m2 as m2_module

    matmul_ops = importlib.import_module("minivae.ops.matmul")  # the module, not ops.matmul()

    def subnormals_seen_by_linear_backward() -> int:
        seen = []
        plain_backward = matmul_ops.Linear.backward

        def spy(self, grad_out):
            tiny32 = np.finfo(np.float32).tiny
            seen.append(int(np.count_nonzero((grad_out != 0) & (np.abs(grad_out) < tiny32))))
            return plain_backward(self, grad_out)

        with monkeypatch.context() as patch, minivae.set_default_dtype("float32"):
            patch.setattr(matmul_ops.Linear, "backward", spy)
            B.manual_seed(1)
            model = tiny("m2", hidden=[16], latent=3)
            confident(model, 85.0)
            loss, _ = model.loss(data(32)[0])
            loss.backward()
        return sum(seen)

    assert subnormals_seen_by_linear_backward() == 0
    monkeypatch.setattr(m2_module, "class_weights", lambda q: q)  # the plain weights
    assert subnormals_seen_by_linear_backward() > 0  # so the check above can fail


def test_m2_classify_and_classification_error():
    model = tiny("m2")
    x, y = data(20)
    pred = model.classify(x)
    assert pred.shape == (20,) and pred.dtype.kind in "iu"
    assert np.all((pred >= 0) & (pred < C))
    err = metrics.classification_error(model, x, y, batch_size=7)
    assert err == pytest.approx(np.mean(B.to_numpy(pred) != y))
    assert model.reconstruct(x).shape == (20, X_DIM)  # y = the classifier's guess


def test_m2_importance_weights_sum_over_the_classes_exactly():
    model = tiny("m2")
    x, _ = data(4)
    eps = np.random.default_rng(6).standard_normal((7, C * 4, 2))  # one z per class and sample
    summed = model.log_importance_weights(x, 7, eps=eps).numpy()  # (7, 4)
    per_class = np.stack([
        model.log_importance_weights(x, 7, y=np.full(4, c), eps=eps[:, c * 4 : (c + 1) * 4]).numpy()
        for c in range(C)
    ])  # fmt: skip  (C, 7, 4): log p(x, y=c, z) - log q(z | x, y=c)
    m = per_class.max(axis=0)
    assert np.allclose(summed, m + np.log(np.exp(per_class - m).sum(axis=0)), rtol=1e-13)
    ll = metrics.importance_sampled_log_likelihood(model, x, k=50, chunk=16)
    assert ll.shape == (4,) and np.all(np.isfinite(ll)) and np.all(ll < 0)


# ----------------------------------------------------------------------------- metrics


def test_importance_sampled_log_likelihood_bounds_and_cvae_labels():
    model = tiny("vae")
    x, y = data()
    elbo = np.mean([model.elbo(x)["elbo"].numpy() for _ in range(200)], axis=0)
    ll = metrics.importance_sampled_log_likelihood(model, x, k=2000)
    assert ll.shape == (5,) and np.all(ll > elbo)  # log p(x) >= ELBO
    cvae = tiny("cvae")
    assert metrics.importance_sampled_log_likelihood(cvae, x, k=10, y=y).shape == (5,)
    with pytest.raises(ValueError, match="None"):
        metrics.importance_sampled_log_likelihood(cvae, x, k=10)  # log p(x | y) needs y
    with pytest.raises(TypeError, match="Autoencoder"):
        metrics.importance_sampled_log_likelihood(tiny("ae"), x, k=10)
    for bad in (0, -3):
        with pytest.raises(ValueError, match=str(bad)):
            metrics.importance_sampled_log_likelihood(model, x, k=bad)
    with pytest.raises(ValueError, match="chunk"):
        metrics.importance_sampled_log_likelihood(model, x, k=10, chunk=0)


def test_active_units():
    rng = np.random.default_rng(8)
    mu = np.concatenate([rng.normal(0, 1.0, (500, 3)), rng.normal(0, 0.01, (500, 2))], axis=1)
    assert metrics.active_units(mu) == 3
    assert metrics.active_units(Tensor(mu), threshold=1e-6) == 5
    assert np.allclose(metrics.unit_activity(mu), mu.var(axis=0))


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
        if kind == "m2":
            model.loss(x, None, None)
        elif kind == "cvae":
            model.loss(x, np.zeros(2, dtype=np.int64))
        else:
            model.loss(x)


@pytest.mark.parametrize(
    ("cls", "kwargs", "shown"),
    [
        (ConditionalVAE, {"n_classes": 0}, "n_classes.*got 0"),
        (SemiSupervisedVAE, {"n_classes": -2}, "n_classes.*got -2"),
        (VAE, {"beta": -0.5}, "beta.*got -0.5"),
        (VAE, {"likelihood": "gaussian", "sigma": 0.0}, "sigma.*> 0.*got 0.0"),
        (VAE, {"likelihood": "gaussian", "sigma": -1.0}, "sigma.*got -1.0"),
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
        model.loss(x, kl_weight=-1)
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
    loss, stats = model.loss(x, x, y) if kind == "m2" else model.loss(x, y)
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
