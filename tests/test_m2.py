"""Tests of M2, the semi-supervised VAE (minivae.models.m2): its bounds, objective and classifier.

Its fast sum over y has its own file, tests/test_m2_fast_path.py, which holds it equal
to the plain (tiled) version; the tests every model shares are in tests/test_models.py.
"""

from __future__ import annotations

import importlib
import math

import pytest
from model_fixtures import X_DIM, C, assert_loss_gradients, data, tiny

import minivae
from minivae import Tensor, metrics
from minivae import backend as B
from minivae.data import Batch

np = B.np


@pytest.fixture(autouse=True)
def _float64():
    with minivae.set_default_dtype("float64"):
        B.manual_seed(7)
        yield


@pytest.mark.parametrize("sum_over_y", [True, False])
def test_m2_loss_gradients(sum_over_y):
    model = tiny("m2", sum_over_y=sum_over_y)
    x, y = data()
    xu, _ = data(4, seed=1)
    assert_loss_gradients(model, lambda: model.loss(Batch(xu, x_labelled=x, y_labelled=y), kl_weight=0.5)[0])


def test_m2_objective_combines_the_bounds_as_documented():
    model = tiny("m2")
    xl, yl = data(5)
    xu, _ = data(4, seed=1)
    B.manual_seed(11)
    loss, stats = model.loss(Batch(xu, x_labelled=xl, y_labelled=yl))
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
    for key in ("elbo", "recon", "kl"):  # per-example means over both parts
        everything = np.concatenate([lab[key].numpy(), unl[key].numpy()])
        assert stats[key] == pytest.approx(everything.mean(), rel=1e-12), key


def test_m2_alpha_default_and_ablation():
    model = tiny("m2", alpha=None, n_labelled=100, n_total=50_000)
    assert model.classification_weight == pytest.approx(0.1 * 50_000 / 100)
    x, y = data()
    default = tiny("m2", alpha=None)
    assert default.classification_weight == pytest.approx(50.0)  # 0.1 * 50000 / 100, announced
    assert default.loss(Batch(None, x_labelled=x, y_labelled=y))[1]["alpha"] == pytest.approx(50.0)
    # alpha = 0: labelled data alone give the classifier no gradient
    model = tiny("m2", alpha=0)
    loss, _ = model.loss(Batch(None, x_labelled=x, y_labelled=y))
    loss.backward()
    assert all(p.grad is None or not np.any(p.grad) for p in model.classifier.parameters())
    assert any(np.any(p.grad) for p in model.encoder.parameters())
    model = tiny("m2", alpha=1.0)
    loss, _ = model.loss(Batch(None, x_labelled=x, y_labelled=y))
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
            loss, _ = model.loss(Batch(data(32)[0]))
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


def test_m2_evaluate_scores_both_bounds_and_the_classifier_error():
    """evaluate(Batch(x, y)) = the loss with x as unlabelled and as labelled data, plus "error"."""
    model = tiny("m2")
    x, y = data(8)
    B.manual_seed(4)
    out = model.evaluate(Batch(x, y))
    B.manual_seed(4)
    _, stats = model.loss(Batch(x, x_labelled=x, y_labelled=y))
    for key, value in stats.items():
        assert out[key] == pytest.approx(value, rel=1e-12), key
    wrong = np.mean(B.to_numpy(model.classify(x)) != y)
    assert out["error"] == pytest.approx(wrong)
    unlabelled = model.evaluate(Batch(x))  # images without labels: U(x) alone, no error
    assert "error" not in unlabelled and "labelled_elbo" not in unlabelled


def test_m2_training_batches_hold_an_unlabelled_and_a_labelled_part():
    assert type(tiny("m2")).batch_kind == "semi-supervised"
    model = tiny("m2")
    x, _ = data(5)
    with pytest.raises(ValueError, match="x_labelled was given without y_labelled"):
        model.loss(Batch(x, x_labelled=x))
    with pytest.raises(ValueError, match=r"needs x \(unlabelled\), or x_labelled with y_labelled"):
        model.loss(Batch(None))
    with pytest.raises(TypeError, match="take a minivae.data.Batch, got ndarray"):
        model.loss(x)  # images alone are not a Batch


def test_m2_densities_sum_over_the_label():
    """condition(batch) is None: log p(x) sums over y, so the NLL needs no label."""
    model = tiny("m2")
    x, y = data(4)
    assert model.condition(Batch(x, y)) is None
    assert model.sums_over_classes
