"""Tests of the semi-supervised VAE for a continuous label (minivae.models.ssvae_continuous).

Tiny models in float64, with the noise of y and z fixed through the eps arguments,
so that every bound is a deterministic function that can be checked exactly and
differentiated numerically.
"""

from __future__ import annotations

import itertools
import math
import re

import pytest

import minivae
from minivae import Tensor, metrics
from minivae import backend as B
from minivae.checkpoint import load_model, save_checkpoint
from minivae.data import Batch
from minivae.gradcheck import gradcheck
from minivae.models import MODELS, ContinuousSemiSupervisedVAE, build_model

np = B.np
X_DIM, LATENT = 6, 2
TINY = {"x_dim": X_DIM, "hidden": [4], "latent": LATENT, "activation": "tanh",
        "regression_weight": 3.0}  # fmt: skip
LOG_2PI = math.log(2 * math.pi)


@pytest.fixture(autouse=True)
def _float64():
    with minivae.set_default_dtype("float64"):
        B.manual_seed(5)
        yield


def tiny(**kwargs) -> ContinuousSemiSupervisedVAE:
    return ContinuousSemiSupervisedVAE(**{**TINY, **kwargs})


def data(n=5, k=1, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, X_DIM))  # pixels in [0, 1]
    y = rng.standard_normal((n, k))  # a standardized property
    return x, y


def noise(*shape, seed=1):
    return np.random.default_rng(seed).standard_normal(shape)


def set_parameter(model, name: str, tensor: Tensor) -> None:
    """Put ``tensor`` in place of the parameter called ``name`` (a dotted path)."""
    *path, last = name.split(".")
    obj = model
    for part in path:
        obj = obj[int(part)] if isinstance(obj, list) else getattr(obj, part)
    setattr(obj, last, tensor)


def regressor_output_layer(model):
    return [layer for layer in model.regressor.layers if hasattr(layer, "weight")][-1]


def numpy_bound(model, x, y, eps_z):
    """L(x, y) from the networks' outputs, the rest in NumPy: the CVAE bound + log p(y)."""
    h = model.encoder(Tensor(np.concatenate([x, y], axis=1))).numpy()  # (B, 2 latent)
    mu, log_var = h[:, :LATENT], h[:, LATENT:]
    z = mu + np.exp(0.5 * log_var) * eps_z  # (B, latent)
    logits = model.decoder(Tensor(np.concatenate([z, y], axis=1))).numpy()  # (B, x_dim)
    recon = (x * logits - np.logaddexp(0.0, logits)).sum(axis=1)  # log Bernoulli(x | sigmoid)
    kl_z = 0.5 * (mu**2 + np.exp(log_var) - 1.0 - log_var).sum(axis=1)
    log_p_y = (-0.5 * y**2 - 0.5 * LOG_2PI).sum(axis=1)
    return recon - kl_z + log_p_y


# ----------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("options", [{}, {"n_samples": 2}, {"label_dim": 2, "kl": "mc"},
                                     {"likelihood": "gaussian", "learned_sigma": True,
                                      "sigma": 0.7, "beta": 2.0}])  # fmt: skip
def test_loss_gradients_reach_every_parameter(options):
    model = tiny(**options)
    k, s = model.label_dim, model.n_samples
    xl, yl = data(5, k)
    xu, _ = data(4, k, seed=1)
    eps_l = noise(s, 5, LATENT, seed=2)
    eps_u, eps_y = noise(s, 4, LATENT, seed=3), noise(s, 4, k, seed=4)
    names = [name for name, _ in model.named_parameters()]
    values = [p.data.copy() for _, p in model.named_parameters()]

    def fn(*params):
        for name, p in zip(names, params):
            set_parameter(model, name, p)
        return model.loss(Batch(xu, x_labelled=xl, y_labelled=yl), kl_weight=0.6, eps_labelled=eps_l,
                          eps_unlabelled=eps_u, eps_y=eps_y)[0]  # fmt: skip

    report = gradcheck(fn, values, names=names, mode="full", max_full=10_000)
    assert report.ok, str(report)
    assert report.checked >= sum(v.size for v in values)


def test_the_unlabelled_bound_trains_the_regressor_through_the_sampled_label():
    x, y = data(5)
    model = tiny(regression_weight=0.0)
    loss, _ = model.loss(Batch(None, x_labelled=x, y_labelled=y))  # labelled only, no regression term: y is observed
    loss.backward()
    assert all(p.grad is None or not np.any(p.grad) for p in model.regressor.parameters())
    assert any(np.any(p.grad) for p in model.encoder.parameters())
    model = tiny(regression_weight=0.0)
    loss, _ = model.loss(Batch(x))  # unlabelled only: y = mu_y + sigma_y eps carries the gradient
    loss.backward()
    out = regressor_output_layer(model)
    assert np.all(out.weight.grad[:, 0] != 0)  # the mean's column: only through the sample y
    assert np.all(out.weight.grad[:, 1] != 0)  # log sigma_y^2: through y and the entropy
    # and that gradient is the right one: U(x) as a function of the regressor's output layer,
    # with the noise fixed, against central differences
    eps_z, eps_y = noise(5, LATENT), noise(5, 1, seed=2)
    w = out.weight.data.copy()

    def u_of_w(weight):
        out.weight = weight
        return model.elbo(x, eps=eps_z, eps_y=eps_y)["elbo"].sum()

    assert gradcheck(u_of_w, [w]).ok


# ----------------------------------------------------------------------------- exact checks


def test_labelled_bound_is_the_conditional_vae_bound_plus_log_prior():
    model = tiny()
    x, y = data(5)
    eps = noise(5, LATENT)
    terms = model.elbo(x, y, eps=eps)
    assert np.allclose(terms["elbo"].numpy(), numpy_bound(model, x, y, eps), rtol=1e-12)
    log_p_y = (-0.5 * y**2 - 0.5 * LOG_2PI).sum(axis=1)
    assert np.allclose(terms["log_prior_y"].numpy(), log_p_y, rtol=1e-13)
    assert np.allclose(terms["kl"].numpy(), (terms["kl_z"] - terms["log_prior_y"]).numpy())
    assert np.allclose(terms["elbo"].numpy(), (terms["recon"] - terms["kl"]).numpy(), rtol=1e-13)


@pytest.mark.parametrize("k, samples", [(1, 1), (2, 3)])
def test_unlabelled_bound_is_the_mean_labelled_bound_at_sampled_labels_plus_entropy(k, samples):
    model = tiny(label_dim=k, n_samples=samples)
    x, _ = data(4, k)
    eps_z, eps_y = noise(samples, 4, LATENT), noise(samples, 4, k, seed=2)
    u = model.elbo(x, eps=eps_z, eps_y=eps_y)
    h = model.regressor(Tensor(x)).numpy()  # (B, 2k)
    mu_y, log_var_y = h[:, :k], h[:, k:]
    entropy = 0.5 * (LOG_2PI + 1.0 + log_var_y).sum(axis=1)  # H(N(mu, sigma^2)), closed form
    ys = mu_y + np.exp(0.5 * log_var_y) * eps_y  # (S, B, k): y = mu_y + sigma_y eps
    by_hand = np.mean([numpy_bound(model, x, ys[s], eps_z[s]) for s in range(samples)], axis=0)
    assert np.allclose(u["elbo"].numpy(), by_hand + entropy, rtol=1e-12)
    assert np.allclose(u["entropy"].numpy(), entropy, rtol=1e-13)
    assert np.allclose(u["elbo"].numpy(), (u["recon"] - u["kl"]).numpy(), rtol=1e-13)
    # with one sample, the same numbers through the model's own labelled bound
    if samples == 1:
        lab = model.elbo(x, ys[0], eps=eps_z[0])["elbo"].numpy()
        assert np.allclose(u["elbo"].numpy(), lab + entropy, rtol=1e-12)


def test_a_sharp_label_posterior_makes_the_unlabelled_bound_the_labelled_one_at_its_mean():
    model = tiny()
    x, _ = data(5)
    eps_z, eps_y = noise(5, LATENT), 3.0 * noise(5, 1, seed=2)  # large draws of y's noise
    out = regressor_output_layer(model)
    weight, bias = out.weight.data.copy(), out.bias.data.copy()
    weight[:, 1] = 0.0  # log sigma_y^2 = its bias, the same for every x
    gaps = []
    for log_var in (0.0, -6.0, -14.0, -30.0):
        bias[1] = log_var
        out.weight, out.bias = Tensor(weight, requires_grad=True), Tensor(bias, requires_grad=True)
        mu_y = model.predict(x)  # (B, 1)
        u = model.elbo(x, eps=eps_z, eps_y=eps_y)
        assert np.allclose(u["entropy"].numpy(), 0.5 * (LOG_2PI + 1.0 + log_var), rtol=1e-13)
        at_mean = model.elbo(x, mu_y, eps=eps_z)["elbo"].numpy()  # L(x, mu_y(x))
        gaps.append(np.max(np.abs(u["elbo"].numpy() - u["entropy"].numpy() - at_mean)))
    assert gaps[0] > 1e-3  # a broad q(y|x): sampled labels really differ from the mean
    assert all(a > b for a, b in itertools.pairwise(gaps))  # the gap shrinks with sigma_y ...
    assert gaps[-1] < 1e-5  # ... to U(x) = L(x, mu_y(x)) + H(q(y|x))


def test_prior_term_plus_entropy_estimates_minus_the_kl_of_the_label():
    model = tiny(label_dim=2, n_samples=20_000)
    x, _ = data(3, 2)
    u = model.elbo(x)
    h = model.regressor(Tensor(x)).numpy()
    mu, log_var = h[:, :2], h[:, 2:]
    kl_y = 0.5 * (mu**2 + np.exp(log_var) - 1.0 - log_var).sum(axis=1)  # KL(q(y|x) || N(0, I))
    estimate = (u["log_prior_y"] + u["entropy"]).numpy()  # E_q[log p(y)] + H = -KL
    # log p(y) at a sample has a standard deviation of O(1): 20000 samples give ~0.01
    assert np.max(np.abs(estimate + kl_y)) < 0.05
    assert not np.allclose(estimate, -kl_y, rtol=1e-9)  # it is a Monte-Carlo estimate


def test_objective_combines_the_bounds_and_the_regression_term_as_documented():
    model = tiny(beta=2.0)
    xl, yl = data(5)
    xu, _ = data(4, seed=1)
    eps_l, eps_u, eps_y = noise(5, LATENT), noise(4, LATENT, seed=2), noise(4, 1, seed=3)
    loss, stats = model.loss(Batch(xu, x_labelled=xl, y_labelled=yl), kl_weight=0.5, eps_labelled=eps_l,
                             eps_unlabelled=eps_u, eps_y=eps_y)  # fmt: skip
    lab = model.elbo(xl, yl, eps=eps_l)
    unl = model.elbo(xu, eps=eps_u, eps_y=eps_y)
    sq = ((yl - model.predict(xl).numpy()) ** 2).sum(axis=1)  # ||y - E_q[y|x]||^2
    # the KL of z is weighted by beta * kl_weight = 1 in the objective; the bounds are unweighted
    kl_extra = (2.0 * 0.5 - 1.0) * (lab["kl_z"].numpy().sum() + unl["kl_z"].numpy().sum())
    J = lab["elbo"].numpy().sum() - 3.0 * sq.sum() + unl["elbo"].numpy().sum() - kl_extra
    assert loss.item() == pytest.approx(-J / 9, rel=1e-12)
    assert stats["regression_loss"] == pytest.approx(sq.mean(), rel=1e-12)
    assert stats["regression_weight"] == 3.0
    assert stats["labelled_elbo"] == pytest.approx(lab["elbo"].numpy().mean(), rel=1e-12)
    assert stats["unlabelled_elbo"] == pytest.approx(unl["elbo"].numpy().mean(), rel=1e-12)
    assert stats["entropy_y"] == pytest.approx(unl["entropy"].numpy().mean(), rel=1e-12)
    everything = np.concatenate([lab["elbo"].numpy(), unl["elbo"].numpy()])
    assert stats["elbo"] == pytest.approx(everything.mean(), rel=1e-12)
    # beta = 2 with kl_weight = 1 weighs the KL twice: the loss moves, the reported bound not
    loss2, stats2 = model.loss(Batch(xu, x_labelled=xl, y_labelled=yl), eps_labelled=eps_l,
                               eps_unlabelled=eps_u, eps_y=eps_y)  # fmt: skip
    assert loss2.item() > loss.item() and stats2["elbo"] == pytest.approx(stats["elbo"], rel=1e-13)


def test_drawn_noise_is_the_noise_one_would_pass():
    model = tiny(n_samples=2)
    xl, yl = data(5)
    xu, _ = data(4, seed=1)
    B.manual_seed(11)
    loss, _ = model.loss(Batch(xu, x_labelled=xl, y_labelled=yl))
    B.manual_seed(11)  # the same draws, in the documented order: labelled z, then y, then z
    rng = B.rng()
    eps_l = rng.standard_normal(size=(2, 5, LATENT))
    eps_y = rng.standard_normal(size=(2, 4, 1))
    eps_u = rng.standard_normal(size=(2, 4, LATENT))
    fixed, _ = model.loss(Batch(xu, x_labelled=xl, y_labelled=yl), eps_labelled=eps_l,
                          eps_unlabelled=eps_u, eps_y=eps_y)  # fmt: skip
    assert loss.item() == pytest.approx(fixed.item(), rel=1e-13)


def test_importance_weights_are_the_joint_over_the_proposal_and_bound_log_px():
    model = tiny(label_dim=2)
    x, y = data(3, 2)
    K = 4
    eps_z, eps_y = noise(K, 3, LATENT), noise(K, 3, 2, seed=2)
    log_w = model.log_importance_weights(x, K, eps=eps_z, eps_y=eps_y).numpy()  # (K, B)
    assert log_w.shape == (K, 3)
    h = model.regressor(Tensor(x)).numpy()
    mu_y, lv_y = h[:, :2], h[:, 2:]
    for k in range(K):
        yk = mu_y + np.exp(0.5 * lv_y) * eps_y[k]
        log_q_y = (-0.5 * (LOG_2PI + lv_y + eps_y[k] ** 2)).sum(axis=1)  # log q(y_k | x)
        # log p(x, y_k, z_k) - log q(z_k | x, y_k): the labelled weights at the sampled label
        joint = model.log_importance_weights(x, 1, y=yk, eps=eps_z[k : k + 1]).numpy()[0]
        assert np.allclose(log_w[k], joint - log_q_y, rtol=1e-12)
    labelled = model.log_importance_weights(x, 1, y=y, eps=eps_z[:1]).numpy()[0]
    h = model.encoder(Tensor(np.concatenate([x, y], axis=1))).numpy()
    mu, lv = h[:, :LATENT], h[:, LATENT:]
    z = mu + np.exp(0.5 * lv) * eps_z[0]
    logits = model.decoder(Tensor(np.concatenate([z, y], axis=1))).numpy()
    log_px = (x * logits - np.logaddexp(0, logits)).sum(1)  # log p(x | y, z)
    log_pz = (-0.5 * z**2 - 0.5 * LOG_2PI).sum(1)  # log p(z)
    log_qz = (-0.5 * (LOG_2PI + lv + eps_z[0] ** 2)).sum(1)  # log q(z | x, y) at z = mu + sigma eps
    log_py = (-0.5 * y**2 - 0.5 * LOG_2PI).sum(1)  # log p(y)
    expected = log_px + log_pz - log_qz + log_py
    assert np.allclose(labelled, expected, rtol=1e-12)
    # log p(x) >= E[U(x)]: the importance-sampled estimate sits above the averaged bound
    bound = np.mean([model.elbo(x)["elbo"].numpy() for _ in range(300)], axis=0)
    ll = metrics.importance_sampled_log_likelihood(model, x, k=3000)
    assert ll.shape == (3,) and np.all(ll > bound)


# ----------------------------------------------------------------------------- shapes and errors


@pytest.mark.parametrize("k", [1, 3])
def test_shapes_of_every_method(k):
    model = tiny(label_dim=k, n_samples=2)
    x, y = data(5, k)
    for terms in (model.elbo(x, y), model.elbo(x)):
        for key in ("recon", "kl_z", "log_prior_y", "kl", "elbo"):
            assert terms[key].shape == (5,), key
    assert model.elbo(x)["entropy"].shape == (5,)
    assert model.predict(x).shape == (5, k)
    q = model.label_posterior(x)
    assert q.mu.shape == q.log_var.shape == (5, k)
    mu, log_var = model.encode(x, y)
    assert mu.shape == log_var.shape == (5, LATENT)
    assert model.encode(x)[0].shape == (5, LATENT)  # y = the regressor's mean
    probs = model.decode(mu, y).numpy()
    assert probs.shape == (5, X_DIM) and np.all((probs > 0) & (probs < 1))
    assert model.decode_logits(noise(3, 5, LATENT), y).shape == (3, 5, X_DIM)  # samples of z
    assert model.reconstruct(x).shape == model.reconstruct(x, y).shape == (5, X_DIM)
    assert model.sample(4).shape == model.sample(4, y=0.5).shape == (4, X_DIM)
    assert model.sample(2, y=np.ones((2, k))).shape == (2, X_DIM)
    assert model.log_importance_weights(x, 7).shape == model.log_importance_weights(x, 7, y).shape
    assert model.log_importance_weights(x, 7).shape == (7, 5)


def test_a_vector_of_labels_is_one_property():
    model = tiny()
    x, y = data(5)
    eps = noise(5, LATENT)
    as_matrix = model.elbo(x, y, eps=eps)["elbo"].numpy()
    assert np.array_equal(model.elbo(x, y[:, 0], eps=eps)["elbo"].numpy(), as_matrix)
    # integer labels are numbers too
    ints = np.array([0, 1, -1, 2, 0])
    as_floats = ints[:, None].astype(float)
    assert np.allclose(model.elbo(x, ints, eps=eps)["elbo"].numpy(),
                       model.elbo(x, as_floats, eps=eps)["elbo"].numpy())  # fmt: skip
    # the sampled label is conditioned on as given: decoding differs between labels
    z = np.zeros((2, LATENT))
    out = model.decode(z, np.array([[-2.0], [2.0]])).numpy()
    assert not np.allclose(out[0], out[1])


@pytest.mark.parametrize(
    ("k", "labels", "shown"),
    [
        (1, np.zeros((4, 1)), [r"\(4, 1\)", r"\(5, 1\)"]),
        (1, np.zeros(4), [r"\(4,\)", r"\(5, 1\)"]),
        (2, np.zeros(5), [r"\(5,\)", r"\(5, 2\)"]),
        (2, np.zeros((5, 3)), [r"\(5, 3\)", r"\(5, 2\)"]),
        (1, np.zeros((5, 1, 1)), [r"\(5, 1, 1\)", r"\(5, 1\)"]),
    ],
)
def test_labels_of_the_wrong_shape_name_both_shapes(k, labels, shown):
    model = tiny(label_dim=k)
    x, _ = data(5, k)
    for call in (lambda: model.elbo(x, labels), lambda: model.loss(Batch(None, x_labelled=x, y_labelled=labels)),
                 lambda: model.encode(x, labels)):  # fmt: skip
        with pytest.raises(ValueError) as info:
            call()
        for pattern in shown:
            assert re.search(pattern, str(info.value)), str(info.value)
        assert "label_dim" in str(info.value)


def test_bad_labels_noise_and_calls_are_rejected_clearly():
    model = tiny()
    x, y = data(5)
    with pytest.raises(ValueError, match="finite"):
        model.elbo(x, np.array([0.0, np.nan, 1.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="real numbers"):
        model.elbo(x, np.array(["a"] * 5))
    with pytest.raises(ValueError, match="None"):
        model.labels(None)
    with pytest.raises(ValueError, match=r"eps_y of shape \(5, 2\), expected \(5, 1\)"):
        model.elbo(x, eps_y=np.zeros((5, 2)))
    with pytest.raises(ValueError, match=r"eps of shape \(4, 2\), expected \(5, 2\)"):
        model.elbo(x, eps=np.zeros((4, 2)))
    with pytest.raises(ValueError, match="2 samples of eps for 3 samples of eps_y"):
        model.elbo(x, eps=np.zeros((2, 5, 2)), eps_y=np.zeros((3, 5, 1)))
    with pytest.raises(ValueError, match="eps_y"):
        model.elbo(x, y, eps_y=np.zeros((5, 1)))
    with pytest.raises(ValueError, match="without y_labelled"):
        model.loss(Batch(None, x_labelled=x))
    with pytest.raises(ValueError, match=r"needs x \(unlabelled\)"):
        model.loss(Batch())
    with pytest.raises(ValueError, match="kl_weight.*got -1"):
        model.loss(Batch(x), kl_weight=-1)
    with pytest.raises(ValueError, match=rf"width {X_DIM - 1}.*x_dim={X_DIM}"):
        model.loss(Batch(np.zeros((2, X_DIM - 1))))
    with pytest.raises(TypeError, match="take a minivae.data.Batch"):
        model.loss(x)
    for kwargs, shown in (({"label_dim": 0}, "label_dim.*got 0"),
                          ({"regression_weight": -1.0}, "regression_weight.*got -1.0"),
                          ({"regressor_hidden": [3, 0]}, "got 0")):  # fmt: skip
        with pytest.raises(ValueError, match=shown):
            tiny(**kwargs)


# ----------------------------------------------------------------------------- config, checkpoints


def test_config_and_checkpoint_round_trip(tmp_path):
    model = tiny(label_dim=2, regressor_hidden=[3], n_samples=2)
    assert MODELS["ssvae-continuous"] is ContinuousSemiSupervisedVAE
    config = model.config
    assert config["kind"] == "ssvae-continuous" and config["regressor_hidden"] == [3]
    assert "objective" not in config and "k" not in config
    assert type(build_model(config)) is ContinuousSemiSupervisedVAE
    path = save_checkpoint(tmp_path / "ssvae.npz", model, meta={"label_mean": 0.1})
    loaded, meta = load_model(path, expect_kind="ssvae-continuous")
    assert loaded.config == config and meta["label_mean"] == 0.1
    x, y = data(4, 2)
    eps_z, eps_y = noise(2, 4, LATENT), noise(2, 4, 2, seed=2)
    assert np.array_equal(loaded.predict(x).numpy(), model.predict(x).numpy())
    for yy in (y, None):
        a = loaded.elbo(x, yy, eps=eps_z, eps_y=None if yy is not None else eps_y)["elbo"].numpy()
        b = model.elbo(x, yy, eps=eps_z, eps_y=None if yy is not None else eps_y)["elbo"].numpy()
        assert np.array_equal(a, b)
    for name, p in loaded.named_parameters():
        assert np.array_equal(p.numpy(), dict(model.named_parameters())[name].numpy()), name


def test_models_train_and_evaluate_on_the_device(device):
    model = tiny(n_samples=2)
    x_host, y_host = data()
    x, y = B.from_numpy(x_host), B.from_numpy(y_host)
    loss, stats = model.loss(Batch(x, x_labelled=x, y_labelled=y))
    loss.backward()
    assert math.isfinite(stats["loss"])
    for name, p in model.named_parameters():
        assert B.array_device(p.grad) == device, name
    assert B.array_device(model.predict(x).data) == device
    ll = metrics.importance_sampled_log_likelihood(model, x, k=20, chunk=7)
    assert ll.shape == (5,) and np.all(np.isfinite(ll))


# ----------------------------------------------------------------------------- the model protocol


def test_evaluate_scores_both_bounds_and_the_labels_squared_error_in_raw_units():
    model = tiny(label_mean=5.0, label_std=4.0)  # y = (raw - 5) / 4
    x, y = data(6)
    B.manual_seed(8)
    out = model.evaluate(Batch(x, y))
    B.manual_seed(8)
    _, stats = model.loss(Batch(x, x_labelled=x, y_labelled=y))
    for key, value in stats.items():
        assert out[key] == pytest.approx(value, rel=1e-12), key
    mse = ((model.predict(x).numpy() - y) ** 2).sum(axis=1).mean()  # standardized units
    assert out["regression_loss"] == pytest.approx(mse, rel=1e-12)
    assert out["label_mse"] == pytest.approx(16.0 * mse, rel=1e-12)  # degrees^2: times std^2
    assert model.condition(Batch(x, y)) is None  # log p(x) integrates y out
    assert isinstance(model.predict(x), Tensor)


def test_figure_samples_sweep_the_label_across_the_columns_with_one_z_per_row():
    model = tiny(label_mean=10.0, label_std=5.0)
    B.manual_seed(3)
    images, caption, cols = model.figure_samples(12)
    assert images.shape == (12, X_DIM) and cols == 9
    assert "from 0 to 20" in caption  # -2 and +2 standard deviations, in raw units
    B.manual_seed(3)
    z = np.repeat(B.rng().standard_normal(size=(2, LATENT)), 9, axis=0)[:12]  # one z per row
    y = np.tile(np.linspace(-2.0, 2.0, 9), 2)[:12, None]  # column c: the c-th label
    np.testing.assert_allclose(images.numpy(), model.decode(z, y).numpy(), rtol=1e-12)
    images, caption, _ = model.figure_samples(4, label=15.0)  # raw 15 = +1 standard deviation
    assert images.shape == (4, X_DIM) and "label 15" in caption
    with pytest.raises(ValueError, match="label_std must be > 0"):
        tiny(label_std=0.0)
