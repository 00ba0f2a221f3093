"""Tests of the conditional VAE (minivae.models.cvae) on its own, independent of M2.

The label enters both networks as a one-hot code: these tests fix which column means
which class (column c of the code is class c, the rows x_dim + c of the encoder's
first layer and latent + c of the decoder's), and, with S > 1 samples of z, that each
sample of example b is decoded with b's label (the code is tiled over the samples,
not repeated). Both were only caught through M2 before.
"""

from __future__ import annotations

import math

import pytest
from model_fixtures import X_DIM, C, assert_loss_gradients, data, tiny

import minivae
from minivae import Tensor
from minivae import backend as B
from minivae.data import Batch

np = B.np
LATENT = 2
LABELS = np.array([0, 2, 1, 2, 0])  # every class, in no sorted order: a mix-up shows


@pytest.fixture(autouse=True)
def _float64():
    with minivae.set_default_dtype("float64"):
        B.manual_seed(11)
        yield


def by_hand_posterior(model, x, y):
    """(mu, log_var) from the encoder MLP fed [x, e_y] built here, e_y the y-th unit vector."""
    code = np.eye(C)[y]  # (B, C): column c is class c
    h = model.encoder(Tensor(np.concatenate([x, code], axis=1))).numpy()  # (B, 2 latent)
    return h[:, :LATENT], h[:, LATENT:]


def by_hand_logits(model, z, y):
    """Decoder logits for z (B, latent) and labels y (B,): the MLP fed [z, e_y] built here."""
    return model.decoder(Tensor(np.concatenate([z, np.eye(C)[y]], axis=1))).numpy()


def bernoulli(x, logits):
    return (x * logits - np.logaddexp(0.0, logits)).sum(axis=-1)


def test_column_c_of_the_code_is_class_c_in_the_encoder():
    model = tiny("cvae")
    x, _ = data(5)
    mu, log_var = model.encode(x, LABELS)
    mu_hand, log_var_hand = by_hand_posterior(model, x, LABELS)
    np.testing.assert_allclose(mu.numpy(), mu_hand, rtol=1e-13)
    np.testing.assert_allclose(log_var.numpy(), log_var_hand, rtol=1e-13)
    # x = 0 isolates the label's own row of the first layer: W[x_dim + c] + b for class c
    first = model.encoder.layers[0]
    zeros = np.zeros((C, X_DIM))
    pre = first.weight.numpy()[X_DIM:] + first.bias.numpy()  # (C, H): row c is class c
    expected = model.encoder.after_first_layer(Tensor(pre)).numpy()
    mu0, _ = model.encode(zeros, np.arange(C))
    np.testing.assert_allclose(mu0.numpy(), expected[:, :LATENT], rtol=1e-13)
    assert not np.allclose(mu0.numpy()[0], mu0.numpy()[1])  # the classes really differ


def test_column_c_of_the_code_is_class_c_in_the_decoder():
    model = tiny("cvae")
    z = np.random.default_rng(2).standard_normal((5, LATENT))
    probs = model.decode(z, LABELS).numpy()
    np.testing.assert_allclose(probs, 1 / (1 + np.exp(-by_hand_logits(model, z, LABELS))),
                               rtol=1e-13)  # fmt: skip
    shifted = model.decode(z, (LABELS + 1) % C).numpy()
    assert not np.allclose(probs, shifted)  # so a code shifted by one column would show


@pytest.mark.parametrize("samples", [1, 3])
def test_bound_with_several_samples_decodes_each_sample_with_its_own_label(samples):
    """recon = mean over S samples of log p(x | y_b, z_sb): the code TILED over samples."""
    model = tiny("cvae", n_samples=samples)
    x, _ = data(5)
    eps = np.random.default_rng(3).standard_normal((samples, 5, LATENT))
    terms = model.elbo(x, LABELS, eps=eps)
    mu, log_var = by_hand_posterior(model, x, LABELS)
    z = mu + np.exp(0.5 * log_var) * eps  # (S, B, latent)
    recon = np.mean([bernoulli(x, by_hand_logits(model, z[s], LABELS)) for s in range(samples)],
                    axis=0)  # fmt: skip
    kl = 0.5 * (mu**2 + np.exp(log_var) - 1.0 - log_var).sum(axis=1)
    np.testing.assert_allclose(terms["recon"].numpy(), recon, rtol=1e-12)
    np.testing.assert_allclose(terms["kl"].numpy(), kl, rtol=1e-12)
    np.testing.assert_allclose(terms["elbo"].numpy(), recon - kl, rtol=1e-12)


def test_importance_weights_with_several_samples_pair_samples_and_labels():
    model = tiny("cvae")
    x, _ = data(5)
    k = 4
    eps = np.random.default_rng(4).standard_normal((k, 5, LATENT))
    log_w = model.log_importance_weights(x, k, LABELS, eps=eps).numpy()  # (K, B)
    mu, log_var = by_hand_posterior(model, x, LABELS)
    z = mu + np.exp(0.5 * log_var) * eps  # (K, B, latent)
    log_px = np.stack([bernoulli(x, by_hand_logits(model, z[s], LABELS)) for s in range(k)])
    log_pz = (-0.5 * z**2 - 0.5 * math.log(2 * math.pi)).sum(axis=-1)
    log_q = (-0.5 * (z - mu) ** 2 / np.exp(log_var) - 0.5 * log_var
             - 0.5 * math.log(2 * math.pi)).sum(axis=-1)  # fmt: skip
    np.testing.assert_allclose(log_w, log_px + log_pz - log_q, rtol=1e-12)


def test_samples_of_a_class_are_decoded_with_that_class():
    model = tiny("cvae")
    B.manual_seed(5)
    images = model.sample(4, y=2).numpy()
    B.manual_seed(5)
    z = B.rng().standard_normal(size=(4, LATENT))  # the draw sample() makes
    expected = 1 / (1 + np.exp(-by_hand_logits(model, z, np.full(4, 2))))
    np.testing.assert_allclose(images, expected, rtol=1e-13)


def test_figure_samples_put_class_c_in_column_c_with_one_z_per_row():
    model = tiny("cvae")
    B.manual_seed(6)
    images, caption, cols = model.figure_samples(7)  # rows of C = 3: (0, 1, 2) (0, 1, 2) (0)
    assert images.shape == (7, X_DIM) and cols == C and "column c is class c" in caption
    B.manual_seed(6)
    z = B.rng().standard_normal(size=(3, LATENT))  # the draw figure_samples makes: one per row
    z_rows = np.repeat(z, C, axis=0)[:7]  # (7, latent)
    labels = np.arange(7) % C
    expected = 1 / (1 + np.exp(-by_hand_logits(model, z_rows, labels)))
    np.testing.assert_allclose(images.numpy(), expected, rtol=1e-13)
    images, caption, _ = model.figure_samples(4, label=1)
    assert images.shape == (4, X_DIM) and "class 1" in caption
    with pytest.raises(ValueError, match="label 5 is outside the valid range"):
        model.figure_samples(3, label=5)


def test_loss_reads_the_labels_of_the_batch_and_gradients_check():
    model = tiny("cvae")
    x, y = data()
    loss, stats = model.loss(Batch(x, y))
    assert loss.item() == pytest.approx(stats["loss"])
    with pytest.raises(ValueError, match="needs labels y"):
        model.loss(Batch(x))
    assert model.condition(Batch(x, y)) is y  # log p(x | y): the NLL is conditioned on y
    assert type(model).batch_kind == "labelled"
    assert_loss_gradients(model, lambda: model.loss(Batch(x, y))[0])
