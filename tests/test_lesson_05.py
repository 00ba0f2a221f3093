"""Lesson 05 (the conditional VAE) in --quick mode: the numbers it claims, and its figures.

The lesson runs once per test session (about 15 s: tiny models, one epoch, the
built-in Fashion-MNIST subset so that no download is needed); each test then checks
one claim against summary.json. The quick models are barely trained, so the tests
check what must hold at any quality: shapes, ranges, and that the reported numbers
agree with one another; the quality bars themselves are measured by the full run.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from lesson_loader import assert_figures, run_quick

from minivae.checkpoint import load_model

FIGURES = {
    "2_training_elbo.png",
    "3_class_conditional_samples.png",
    "3_sample_agreement.png",
    "4_style_transfer.png",
    "5_interpolations.png",
    "5_latent_arithmetic.png",
    "6_latent_codes_by_class.png",
    "7_log_likelihood_gain.png",
}
LOG_10 = math.log(10)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Run the quick lesson once: (output folder, summary.json, main's return, the module)."""
    out = tmp_path_factory.mktemp("lesson_04")
    return run_quick(out, "05_conditional_vae.py", "--dataset", "fashion-mnist-builtin",
                     "--no-progress")  # fmt: skip


@pytest.fixture(scope="module")
def summary(run):
    return run[1]


def is_multiple_of(value: float, step: float) -> bool:
    """value is k * step for an integer k, to the six significant digits of summary.json."""
    return math.isclose(value / step, round(value / step), abs_tol=1e-3)


def test_summary_is_what_main_returns_and_quick(run):
    _, summary, returned, lesson = run
    assert summary == returned
    assert summary["lesson"] == "05_conditional_vae" and summary["quick"] is True
    assert summary["dataset"] == "fashion-mnist-builtin"
    assert summary["epochs"] == lesson.EPOCHS[1]
    assert summary["nll_k"] == lesson.NLL_K[1]
    assert summary["n_test"] == lesson.N_TEST[1]
    assert lesson.pick(lesson.EPOCHS, False) == 10 and lesson.NLL_K[0] == 500


def test_every_figure_is_a_png(run):
    assert_figures(run[0], FIGURES)


def test_both_models_have_the_same_networks(run):
    folder, _, _, lesson = run
    cvae, _ = load_model(folder / "cvae_training" / "checkpoint.npz", expect_kind="cvae")
    vae, _ = load_model(folder / "vae_training" / "checkpoint.npz", expect_kind="vae")
    assert cvae.n_classes == 10
    for key in ("hidden", "latent", "activation", "likelihood", "x_dim"):
        assert cvae.config[key] == vae.config[key], key
    assert cvae.config["hidden"] == list(lesson.HIDDEN[1]) and cvae.latent == lesson.LATENT
    # the label's one-hot widens the first layer of each network by exactly 10 inputs
    assert cvae.encoder[0].n_in == vae.encoder[0].n_in + 10
    assert cvae.decoder[0].n_in == vae.decoder[0].n_in + 10


def test_the_hand_built_elbo_is_the_library_one(summary):
    assert summary["by_hand_minus_library"] < 1e-9  # float64: equal to rounding
    assert summary["by_hand_elbo_joint_mean"] < 0


def test_classifier_numbers_are_consistent(summary):
    acc = summary["classifier_test_accuracy"]
    per_class = summary["classifier_test_accuracy_per_class"]
    assert len(per_class) == 10 and all(0.0 <= a <= 1.0 for a in per_class)
    # the built-in test split is class-balanced: the overall accuracy is the mean over classes
    assert acc == pytest.approx(float(np.mean(per_class)), abs=1e-3)
    assert acc > 0.3  # even one epoch on 2000 images is far above chance (0.1)


def test_sample_agreement_is_per_class_and_the_bar_flag_follows(summary):
    per_class, n = summary["sample_agreement_per_class"], summary["samples_per_class"]
    assert len(per_class) == 10 and n > 0
    for a in per_class:
        assert 0.0 <= a <= 1.0 and is_multiple_of(a, 1 / n)  # a count out of n samples
    assert summary["sample_agreement"] == pytest.approx(float(np.mean(per_class)), abs=1e-3)
    assert summary["sample_agreement_min"] == pytest.approx(min(per_class), abs=1e-4)
    assert summary["bar_sample_agreement_met"] is (min(per_class) >= 0.95)


def test_style_transfer_numbers_are_consistent(summary):
    every = summary["style_transfer_agreement"]
    other = summary["style_transfer_agreement_other_labels"]
    assert 0.0 <= every <= 1.0 and 0.0 <= other <= 1.0
    # every = (own label + 9 other labels) / 10, so the own-label share must be a fraction
    own = 10 * every - 9 * other
    assert -1e-3 <= own <= 1.0 + 1e-3


def test_interpolation_and_arithmetic_numbers(run):
    _, s, _, lesson = run
    assert s["interpolation_pairs"] == lesson.N_INTERP_PAIRS[1]
    assert 0.0 <= s["cvae_interpolation_agreement"] <= 1.0
    assert 0.0 <= s["vae_interpolation_third_class"] <= 1.0
    assert s["arithmetic_alphas"] == list(lesson.ALPHAS) and 0.0 in s["arithmetic_alphas"]
    assert len(s["arithmetic_ink"]) == len(s["arithmetic_agreement"]) == len(lesson.ALPHAS)
    assert all(0.0 < v < 1.0 for v in s["arithmetic_ink"])
    assert all(0.0 <= v <= 1.0 for v in s["arithmetic_agreement"])
    assert s["stroke_vector_norm"] > 0 and -1.0 <= s["stroke_vector_mean_cosine"] <= 1.0


def test_probe_accuracies_are_counts_of_test_codes(run):
    _, s, _, lesson = run
    n = lesson.PROBE_TEST[1]
    for tag in ("vae", "cvae"):
        acc = s[f"{tag}_probe_accuracy"]
        assert 0.0 <= acc <= 1.0 and is_multiple_of(acc, 1 / n)


def test_log_likelihoods_and_the_gain(summary):
    s = summary
    cvae, vae = s["cvae_log_px_given_y"], s["vae_log_px"]
    assert math.isfinite(cvae) and math.isfinite(vae) and cvae < 0 and vae < 0
    assert s["log_likelihood_gain"] == pytest.approx(cvae - vae, abs=1e-3)
    assert s["bar_log_likelihood_met"] is (cvae > vae)
    assert s["log_likelihood_gain_standard_error"] > 0
    assert 0.0 <= s["log_likelihood_gain_positive_fraction"] <= 1.0
    # importance sampling with K > 1 sits above the one-sample ELBO (Jensen), for both models
    assert cvae >= s["cvae_test_elbo"] - 0.5 and vae >= s["vae_test_elbo"] - 0.5
    assert s["log_10"] == pytest.approx(LOG_10, abs=1e-5)  # six significant digits
    assert 0.0 < s["label_entropy"] <= LOG_10 + 1e-9  # no 10-class label carries more


def test_the_decomposition_adds_up_and_the_label_term_is_bounded(summary):
    s = summary
    # log p(x|y) − log p_CVAE(x) = log p_CVAE(y|x) + log 10 ≤ log 10, image by image
    assert s["decomposition_label_term_max"] <= LOG_10 + 1e-6
    assert s["decomposition_label_term"] <= s["decomposition_label_term_max"] + 1e-6
    assert s["decomposition_gain"] == pytest.approx(
        s["decomposition_label_term"] + s["decomposition_density_term"], abs=1e-3)
    acc = s["cvae_bayes_classifier_accuracy"]
    assert 0.0 <= acc <= 1.0 and is_multiple_of(acc, 1 / s["decomposition_images"])


def test_helpers(run):
    lesson = run[3]
    a = np.array([[1000.0, -5.0], [1000.0, -7.0], [999.0, -6.0]])  # (C, N), no overflow
    expected = [1000 + math.log(2 + math.exp(-1)), math.log(sum(math.exp(v) for v in (-5, -7, -6)))]
    assert lesson.logsumexp_rows(a) == pytest.approx(expected)
    y = np.array([2, 0, 1, 0, 2, 1])
    assert list(lesson.first_of_each_class(y, 3)) == [1, 2, 0]
    hit = np.array([True, False, True, True, False, False])
    assert list(lesson.per_class_rate(hit, y, 3)) == pytest.approx([0.5, 0.5, 0.5])
