"""M2's fast sum over y against the plain tiled version it replaces.

The unlabelled bound U(x) needs L(x, y) for every class y of nonzero weight. The
plain version tiles x C times and runs the whole encoder and decoder on C * B rows;
the fast one (``SemiSupervisedVAE.fast_sum_over_y``) computes x's part of the first
layer once (``MLP.first_layer_part``) and evaluates only the (class, example) pairs
whose weight q(y|x) is not 0 (a confident classifier leaves few). The other M2 tests
are in tests/test_m2.py. Both must give the same bound and the same gradient for every
parameter, to rounding, in float64.
"""

from __future__ import annotations

import numpy as np
import pytest

import minivae
from minivae import backend as B
from minivae import nn
from minivae.data import Batch
from minivae.models import SemiSupervisedVAE

X_DIM, C, LATENT = 9, 4, 3


@pytest.fixture(autouse=True)
def _float64():
    with minivae.set_default_dtype("float64"):
        B.manual_seed(3)
        yield


def pair(**kwargs):
    """Two models with the same weights: (fast, plain)."""
    config = {"x_dim": X_DIM, "hidden": [7], "latent": LATENT, "activation": "softplus",
              "n_classes": C, "alpha": 3.0, **kwargs}  # fmt: skip
    fast = SemiSupervisedVAE(**config)
    plain = SemiSupervisedVAE(**config)
    plain.load_state_dict(fast.state_dict())
    plain.fast_sum_over_y = False
    assert fast.fast_sum_over_y is None and minivae.fast.enabled  # the default follows the switch
    return fast, plain


def batch(n, seed, likelihood="bernoulli"):
    rng = np.random.default_rng(seed)
    x = rng.random((n, X_DIM))
    if likelihood == "bernoulli":
        x = (x > 0.5).astype(np.float64)
    return x, rng.integers(0, C, n)


CASES = {
    "default": {},
    "two hidden layers": {"hidden": [7, 5], "classifier_hidden": [6]},
    "no hidden layer": {"hidden": []},
    "two samples of z": {"n_samples": 2},
    "Monte-Carlo KL": {"kl": "mc"},
    "Gaussian decoder": {"likelihood": "gaussian", "sigma": 0.7, "learned_sigma": True},
    "a variance per unit": {"likelihood": "gaussian", "sigma": 0.7, "learned_sigma": "per_unit"},
}


@pytest.mark.parametrize("case", list(CASES))
def test_fast_sum_gives_the_plain_bound_and_gradients(case):
    kwargs = CASES[case]
    fast, plain = pair(**kwargs)
    likelihood = kwargs.get("likelihood", "bernoulli")
    xu, _ = batch(6, 1, likelihood)
    xl, yl = batch(5, 2, likelihood)

    # U(x) term by term, with the noise fixed: eps (B, latent) or (S, B, latent)
    shape = (kwargs["n_samples"], 6, LATENT) if "n_samples" in kwargs else (6, LATENT)
    eps = np.random.default_rng(4).standard_normal(shape)
    u_fast, u_plain = fast.elbo(xu, eps=eps), plain.elbo(xu, eps=eps)
    assert set(u_fast) == set(u_plain) == {"recon", "kl_z", "kl", "elbo", "entropy"}
    for key in u_plain:
        assert u_fast[key].shape == (6,)
        np.testing.assert_allclose(u_fast[key].numpy(), u_plain[key].numpy(), rtol=1e-12, atol=1e-12)

    # the whole objective J (labelled and unlabelled parts, kl warm-up) and its gradient;
    # both draw the same noise: the same seed, the same shapes, in the same order
    grads, losses = [], []
    for model in (fast, plain):
        B.manual_seed(21)
        loss, _ = model.loss(Batch(xu, x_labelled=xl, y_labelled=yl), kl_weight=0.6)
        model.zero_grad()
        loss.backward()
        losses.append(loss.item())
        grads.append({name: B.to_numpy(p.grad).copy() for name, p in model.named_parameters()})
    assert losses[0] == pytest.approx(losses[1], rel=1e-13)
    assert set(grads[0]) == set(grads[1])
    for name, g_plain in grads[1].items():
        assert np.any(g_plain), f"{name} got no gradient: the comparison would be empty"
        np.testing.assert_allclose(grads[0][name], g_plain, rtol=1e-10, atol=1e-12,
                                   err_msg=f"gradient of {name}")  # fmt: skip


def confident(model, margin: float, classes=(0,)):
    """q(y|x) = softmax of a bias: the given classes share the mass, the others get e^-margin."""
    last = model.classifier.layers[-1]
    last.weight.data[...] = 0.0
    last.bias.data[...] = -margin
    last.bias.data[list(classes)] = 0.0


@pytest.mark.parametrize("case", ["default", "two samples of z", "Gaussian decoder"])
def test_fast_sum_skips_the_classes_of_weight_zero_and_keeps_value_and_gradients(case):
    """q(y|x) = e^-100 for two classes (weight exactly 0): the fast path leaves their rows out;
    the bound and every gradient are those of the plain path, which computes them all."""
    kwargs = CASES[case]
    fast, plain = pair(**kwargs)
    for model in (fast, plain):
        confident(model, 100.0, classes=(1, 3))
    xu, _ = batch(6, 1, kwargs.get("likelihood", "bernoulli"))
    shape = (kwargs["n_samples"], 6, LATENT) if "n_samples" in kwargs else (6, LATENT)
    eps = np.random.default_rng(4).standard_normal(shape)
    grads = []
    for model in (fast, plain):
        u = model.elbo(xu, eps=eps)["elbo"]
        model.zero_grad()
        u.sum().backward()
        grads.append({name: B.to_numpy(p.grad).copy() for name, p in model.named_parameters()
                      if p.grad is not None})  # fmt: skip
        if model is fast:
            u_fast = u.numpy()
    np.testing.assert_allclose(u_fast, u.numpy(), rtol=1e-12)
    assert set(grads[0]) == set(grads[1])
    for name, g_plain in grads[1].items():
        np.testing.assert_allclose(grads[0][name], g_plain, rtol=1e-10, atol=1e-13,
                                   err_msg=f"gradient of {name}")  # fmt: skip


def test_fast_path_runs_the_first_encoder_layer_on_no_copies_of_x(monkeypatch):
    """Where the time goes: the plain path feeds C * B rows to the first layer, the shared none."""
    fast, plain = pair()
    xu, _ = batch(6, 1)
    seen = []
    original = nn.Linear.forward

    def spy(self, x):
        seen.append((self, x.shape))
        return original(self, x)

    monkeypatch.setattr(nn.Linear, "forward", spy)
    for model, expected in ((plain, [(C * 6, X_DIM + C)]), (fast, [])):
        seen.clear()
        model.elbo(xu)
        first = model.encoder.layers[0]
        assert [shape for layer, shape in seen if layer is first] == expected
        # the remaining encoder layer still sees one row per class and example
        assert [shape for layer, shape in seen if layer is model.encoder.layers[2]] == [(C * 6, 7)]
    # a classifier sure of one class: the fast path runs the networks on one row per example
    for model in (fast, plain):
        confident(model, 100.0)
    for model, rows in ((plain, C * 6), (fast, 6)):
        seen.clear()
        model.elbo(xu)
        assert [shape[0] for layer, shape in seen if layer is model.decoder.layers[0]] == [rows]


def test_switch_off_on_the_class_changes_every_model(monkeypatch):
    fast, _ = pair()
    monkeypatch.setattr(SemiSupervisedVAE, "fast_sum_over_y", False)
    assert fast.fast_sum_over_y is False and SemiSupervisedVAE().fast_sum_over_y is False


def rows_decoded(model, x):
    """How many rows the decoder's first layer saw, call by call, while the model computed U(x)."""
    seen = []
    original = nn.Linear.forward

    def spy(layer, h):
        if layer is model.decoder.layers[0]:
            seen.append(h.shape[0])
        return original(layer, h)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(nn.Linear, "forward", spy)
        model.elbo(x)
    return seen


def test_the_library_switch_turns_the_fast_sum_off_unless_the_model_says_otherwise():
    """MINIVAE_FAST=0 / fast.set_enabled(False) runs the tiled sum; an explicit True still wins."""
    fast, plain = pair()
    x, _ = batch(6, 11)
    for model in (fast, plain):
        confident(model, 100.0)  # one class kept per example: the fast path decodes 6 rows
    assert rows_decoded(fast, x) == [6]
    with minivae.fast.set_enabled(False):
        assert rows_decoded(fast, x) == [C * 6]  # follows the switch: every class, tiled
        fast.fast_sum_over_y = True
        assert rows_decoded(fast, x) == [6]  # set on the model: the model's choice stands
    fast.fast_sum_over_y = None
    assert rows_decoded(plain, x) == [C * 6]
