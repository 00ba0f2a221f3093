"""minivae.disentanglement: MIG and the β-VAE metric on synthetic representations.

The representations are maps of known factors (the five factors of the built-in
shapes data, so the factor sizes are the real ones): the identity (perfectly
disentangled) must score high, a constant code or a copied latent low, an
entangled rotation lower than the identity.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from minivae.data import FACTOR_SIZES
from minivae.disentanglement import (
    beta_vae_metric,
    discretize,
    entropy,
    mig_from_mi,
    mutual_information,
    mutual_information_gap,
    softmax_regression,
)

N = 10_000
K = len(FACTOR_SIZES)


@pytest.fixture(scope="module")
def factors():
    return np.random.default_rng(0).integers(0, FACTOR_SIZES, size=(N, K))  # (N, 5)


def noisy_identity(v, rng, scale=0.05):
    """The factors themselves as float codes, plus a little noise."""
    return v + scale * rng.standard_normal(v.shape)


def rotation(seed=3):
    """A random 5 x 5 rotation that mixes every factor into every code."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((K, K)))
    return q


def standardized(v):
    """Factor indices scaled to mean 0, std 1 for uniform draws (so a rotation mixes them evenly)."""
    sizes = np.asarray(FACTOR_SIZES)
    return (v - (sizes - 1) / 2) / np.sqrt((sizes**2 - 1) / 12)


# ----------------------------------------------------------------------------- building blocks


def test_entropy_and_mutual_information_of_known_tables():
    a = np.repeat(np.arange(4), 4)  # uniform on 4 values
    assert entropy(a) == pytest.approx(math.log(4))
    assert mutual_information(a, a) == pytest.approx(math.log(4))  # I(a; a) = H(a)
    assert mutual_information(a, a % 2) == pytest.approx(math.log(2))  # a determines a mod 2
    b = np.tile(np.arange(4), 4)  # independent of a by construction: every pair once
    assert mutual_information(a, b) == pytest.approx(0.0, abs=1e-12)
    assert entropy(np.zeros(10)) == 0.0


def test_discretize_uses_equal_width_bins_and_keeps_constants_in_one_bin():
    codes = np.stack([np.linspace(0.0, 1.0, 21), np.full(21, 3.0)], axis=1)
    bins = discretize(codes, n_bins=20)
    assert bins[:, 0].tolist() == list(range(20)) + [19]  # the maximum joins the last bin
    assert set(bins[:, 1].tolist()) == {0}
    with pytest.raises(ValueError, match="NaN"):
        discretize(np.array([[np.nan], [1.0]]))


def test_mig_from_mi_is_the_normalized_gap_between_the_two_best_latents():
    mi = np.array([[1.0, 0.1], [0.4, 0.3], [0.2, 0.3]])  # (D = 3, K = 2)
    score, gaps = mig_from_mi(mi, [2.0, 1.0])
    assert gaps == pytest.approx([(1.0 - 0.4) / 2.0, 0.0])  # factor 1: a tie, gap 0
    assert score == pytest.approx(0.15)
    with pytest.raises(ValueError, match="vary"):
        mig_from_mi(mi, [1.0, 0.0])


# ----------------------------------------------------------------------------- MIG


def test_mig_identity_scores_near_one(factors):
    score, mi = mutual_information_gap(noisy_identity(factors, np.random.default_rng(1)), factors)
    assert score >= 0.9
    assert mi.shape == (K, K)
    h = np.array([math.log(s) for s in FACTOR_SIZES])  # uniform factors: H = log(size)
    np.testing.assert_allclose(np.diag(mi), h, rtol=0.02)  # each code carries its whole factor
    assert mi[~np.eye(K, dtype=bool)].max() < 0.05  # and nothing about the others


def test_mig_constant_code_is_zero(factors):
    score, mi = mutual_information_gap(np.zeros((N, 6)), factors)
    assert score <= 0.2
    assert score == 0.0 and np.all(mi == 0.0)


def test_mig_duplicated_latent_scores_low(factors):
    rng = np.random.default_rng(2)
    codes = np.concatenate([factors[:, :1], factors[:, :1], rng.standard_normal((N, 3))], axis=1)
    score, _ = mutual_information_gap(codes.astype(float), factors)
    assert score <= 0.1
    # the copied factor's gap is exactly 0 even when every other factor has its own latent
    codes = np.concatenate([factors[:, :1], factors], axis=1).astype(float)  # (N, 6)
    score, mi = mutual_information_gap(codes, factors)
    _, gaps = mig_from_mi(mi, [entropy(factors[:, k]) for k in range(K)])
    assert gaps[0] == pytest.approx(0.0, abs=1e-12)
    assert gaps[1:].min() > 0.95
    assert score == pytest.approx(gaps[1:].sum() / K)  # a factor copied twice costs 1/K


def test_mig_rotation_scores_lower_than_identity(factors):
    rng = np.random.default_rng(4)
    identity, _ = mutual_information_gap(noisy_identity(standardized(factors), rng, 0.01), factors)
    rotated, _ = mutual_information_gap(standardized(factors) @ rotation(), factors)
    assert rotated < identity - 0.5


def test_mig_checks_shapes(factors):
    with pytest.raises(ValueError, match="same"):
        mutual_information_gap(np.zeros((N - 1, 3)), factors)


# ----------------------------------------------------------------------------- β-VAE metric


def test_beta_vae_metric_identity_scores_near_one():
    noise = np.random.default_rng(5)
    score, details = beta_vae_metric(lambda v: noisy_identity(v, noise), FACTOR_SIZES, seed=0,
                                     n_train=500, n_test=500, batch=32)  # fmt: skip
    assert score >= 0.9
    assert details["confusion"].sum() == 500 and details["chance"] == pytest.approx(1 / K)
    assert details["confusion"].sum(axis=1).tolist() == [100] * K  # balanced test factors


def test_beta_vae_metric_constant_code_is_exactly_chance():
    score, details = beta_vae_metric(lambda v: np.zeros((len(v), 4)), FACTOR_SIZES, seed=0,
                                     n_train=500, n_test=500, batch=8)  # fmt: skip
    # identical features for every point: one predicted class, right on n_test / K points
    assert score <= 0.2
    assert score == pytest.approx(1 / K)
    assert np.count_nonzero(details["confusion"].sum(axis=0)) == 1


def test_beta_vae_metric_ignores_a_nuisance_code_but_not_a_missing_factor():
    # five factors, but the code keeps only the first three: points where factor 3 or 4
    # was fixed look alike, so at most 4 of the 5 "which factor" classes are separable
    score, _ = beta_vae_metric(lambda v: v[:, :3] + 0.0, FACTOR_SIZES, seed=1,
                               n_train=500, n_test=500, batch=32)  # fmt: skip
    assert 0.5 <= score <= 0.85


def test_beta_vae_metric_is_reproducible_and_checks_represent():
    rep = lambda v: standardized(v) @ rotation()
    a = beta_vae_metric(rep, FACTOR_SIZES, seed=7, n_train=100, n_test=100, batch=4)[0]
    b = beta_vae_metric(rep, FACTOR_SIZES, seed=np.random.default_rng(7), n_train=100,
                        n_test=100, batch=4)[0]  # fmt: skip
    assert a == b
    with pytest.raises(ValueError, match="represent"):
        beta_vae_metric(lambda v: np.zeros(len(v)), FACTOR_SIZES, n_train=10, n_test=10, batch=2)


def test_softmax_regression_separates_separable_classes():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    y = rng.integers(0, 3, 600)
    x = centres[y] + 0.5 * rng.standard_normal((600, 2))
    predict = softmax_regression(x, y, 3, steps=300)
    assert np.mean(predict(x) == y) > 0.98
    assert np.mean(predict(x) == (y + 1) % 3) < 0.02
