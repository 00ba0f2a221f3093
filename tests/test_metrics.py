"""Tests of minivae.metrics: importance-sampled log-likelihood, the IWAE bound, evaluation over a
data set (every model's ``evaluate`` averaged by batch size), the test report, active units."""

from __future__ import annotations

import math

import pytest
from model_fixtures import data, tiny

import minivae
from minivae import Tensor, metrics
from minivae import backend as B
from minivae.data import Batch
from minivae.models import MODELS

np = B.np


@pytest.fixture(autouse=True)
def _float64():
    with minivae.set_default_dtype("float64"):
        B.manual_seed(7)
        yield


def model_labels(kind, n, seed=0):
    """The labels an evaluation Batch of this kind of model carries, or None."""
    _, y = data(n, seed)
    if kind in ("cvae", "m2"):
        return y
    if kind == "ssvae-continuous":
        return np.random.default_rng(seed).standard_normal((n, 1))
    return None


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
    # Burda et al.'s test is strict: a unit whose activity equals the threshold is inactive
    at = float(metrics.unit_activity(mu[:, :1])[0])
    assert metrics.active_units(mu[:, :1], threshold=at) == 0
    assert metrics.active_units(mu[:, :1], threshold=np.nextafter(at, 0.0)) == 1


def test_importance_sampling_with_every_weight_zero_gives_minus_inf_not_nan():
    """All log-weights -inf (an image the model gives no probability): log p(x) = -inf. The
    running log-sum-exp subtracts each chunk's maximum, which is -inf there: without its guard
    that is -inf - (-inf) = NaN."""

    class NoMass:
        def log_importance_weights(self, x, n):  # (n, B)
            log_w = np.full((n, x.shape[0]), -np.inf)
            log_w[:, 0] = np.log(0.5)  # the first image keeps a finite weight
            return Tensor(log_w)

    with np.errstate(invalid="raise", divide="ignore"):
        ll = metrics.importance_sampled_log_likelihood(NoMass(), np.zeros((3, 4)), k=10, chunk=4)
    assert ll[0] == pytest.approx(np.log(0.5)) and np.all(ll[1:] == -np.inf)


def test_iwae_bound_is_log_mean_exp_of_the_weights_and_differentiable():
    model = tiny("vae")
    x, _ = data()
    B.manual_seed(2)
    bound = metrics.iwae_bound(model, x, k=6)
    B.manual_seed(2)
    log_w = model.log_importance_weights(x, 6).numpy()  # (6, 5), the same draws
    m = log_w.max(axis=0)
    expected = m + np.log(np.exp(log_w - m).mean(axis=0))
    np.testing.assert_allclose(bound.numpy(), expected, rtol=1e-12)
    assert bound.requires_grad
    (-bound.mean()).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_chunks_of_samples_give_the_estimate_of_one_draw():
    """K samples drawn in chunks and combined by a running log-sum-exp = all K at once."""
    model = tiny("vae")
    x, _ = data()
    B.manual_seed(9)
    chunked = metrics.importance_sampled_log_likelihood(model, x, k=12, chunk=5)
    B.manual_seed(9)
    whole = metrics.importance_sampled_log_likelihood(model, x, k=12, chunk=12)
    np.testing.assert_allclose(chunked, whole, rtol=1e-12)
    assert metrics.default_chunk(tiny("m2"), 10) < metrics.default_chunk(tiny("cvae"), 10)


@pytest.mark.parametrize("kind", list(MODELS))
def test_evaluate_averages_the_models_numbers_by_batch_size(kind):
    """Batches of 3 (the last one of 1) weigh by their size: the mean over the 7 examples."""
    model = tiny(kind)
    x, _ = data(7)
    y = model_labels(kind, 7)
    B.manual_seed(1)
    out = metrics.evaluate(model, x, y, batch_size=3)
    B.manual_seed(1)
    parts = [model.evaluate(Batch(x[s : s + 3], None if y is None else y[s : s + 3]))
             for s in (0, 3, 6)]  # fmt: skip
    assert set(out) == set(parts[0])
    for key in out:
        expected = (3 * parts[0][key] + 3 * parts[1][key] + parts[2][key]) / 7
        assert out[key] == pytest.approx(expected, rel=1e-12), key
    assert all(math.isfinite(v) for v in out.values())


def test_evaluate_gives_the_error_of_a_model_with_a_classifier():
    model = tiny("m2")
    x, y = data(20)
    out = metrics.evaluate(model, x, y, batch_size=6)
    assert out["error"] == pytest.approx(metrics.classification_error(model, x, y))
    assert "error" not in metrics.evaluate(tiny("cvae"), x, y)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        metrics.evaluate(model, x, y, batch_size=0)


@pytest.mark.parametrize("kind", ["vae", "cvae", "m2", "ssvae-continuous"])
def test_test_report_holds_the_bound_the_nll_and_the_models_numbers(kind):
    model = tiny(kind)
    x, _ = data(6)
    y = model_labels(kind, 6)
    out = metrics.test_report(model, x, y, k=30, batch_size=4)
    assert out["n_examples"] == 6 and "test_loss" not in out
    assert out["test_nll_k30"] > 0 and math.isfinite(out["test_elbo"])
    # the importance-sampled log p(x) (or log p(x | y)) is at least the ELBO, on average
    assert out["test_nll_k30"] <= -out["test_elbo"] + 0.5
    if kind == "m2":
        assert 0.0 <= out["test_error"] <= 1.0
    if kind == "ssvae-continuous":
        assert out["test_label_mse"] >= 0


def test_test_report_of_the_autoencoder_has_no_likelihood():
    out = metrics.test_report(tiny("ae"), data(4)[0], None, k=10)
    assert set(out) == {"test_recon", "n_examples"}


def test_classification_error_rejects_bad_input():
    model = tiny("m2")
    x, y = data(6)
    with pytest.raises(ValueError, match="6 inputs but 5 labels"):
        metrics.classification_error(model, x, y[:5])
    with pytest.raises(TypeError, match="VAE has no classify"):
        metrics.classification_error(tiny("vae"), x, y)
    assert metrics.classification_error(model, x, B.to_numpy(model.classify(x))) == 0.0


def test_empty_data_and_bad_counts_are_refused_by_name():
    model = tiny("vae")
    x, _ = data(3)
    empty = np.zeros((0, x.shape[1]))
    with pytest.raises(ValueError, match="importance_sampled_log_likelihood: x holds no examples"):
        metrics.importance_sampled_log_likelihood(model, empty, k=3)
    with pytest.raises(ValueError, match="evaluate: x holds no examples"):
        metrics.test_report(model, empty)
    with pytest.raises(ValueError, match="k, the importance samples per example, must be"):
        metrics.test_report(model, x, k=-5)  # skipped the likelihood without a word before
    with pytest.raises(ValueError, match="test_report: batch_size must be a positive integer"):
        metrics.test_report(model, x, batch_size=0)
    with pytest.raises(TypeError, match=r"use numpy.asarray\(x\)"):
        metrics.importance_sampled_log_likelihood(model, x.tolist(), k=3)
