"""Lesson 05 (the conditional VAE) run as a script in quick mode: the numbers it claims, its figures.

The lesson runs once per test session (tiny models, one epoch, the built-in Fashion-MNIST
subset so that no download is needed); each test then checks one claim against
summary.json. The quick models are barely trained, so the tests check what must hold at
any quality: shapes, ranges, and that the reported numbers agree with one another; the
quality bars themselves are measured by the full run. tests/test_notebooks.py runs the
lesson as a notebook.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from lesson_loader import (
    assert_figures,
    assert_notebook_form,
    assert_quick_run,
    run_script,
)

import minivae as mv
from lessons import common
from minivae.checkpoint import load_model
from minivae.models import VAE, ConditionalVAE

FILENAME = "05_conditional_vae.py"
FIGURES = {
    "2_training_elbo.png",
    "3_class_conditional_samples.png",
    "3_sample_agreement.png",
    "4_style_transfer.png",
    "5_interpolations.png",
    "5_latent_arithmetic.png",
    "6_latent_codes_vae.png",
    "6_latent_codes_cvae.png",
    "7_log_likelihood_gain.png",
}
VERDICTS = (
    "bar_sample_agreement_met",
    "style_transfer_redraws_the_class",
    "interpolation_keeps_the_label",
    "stroke_vector_adds_ink_and_keeps_the_class",
    "z_leaves_the_class_to_y",
    "bar_log_likelihood_met",
    "gain_is_mostly_the_density_term",
)
LOG_10 = math.log(10)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """python lessons/05_conditional_vae.py --quick --out tmp --dataset fashion-mnist-builtin
    --no-progress, once: (output folder, summary.json, the lesson's namespace, what it printed)."""
    return run_script(tmp_path_factory.mktemp("lesson_05"), FILENAME,
                      "--dataset", "fashion-mnist-builtin", "--no-progress")  # fmt: skip


@pytest.fixture(scope="module")
def summary(run):
    return run[1]


def is_multiple_of(value: float, step: float) -> bool:
    """value is k * step for an integer k, to the six significant digits of summary.json."""
    return math.isclose(value / step, round(value / step), abs_tol=1e-3)


def test_a_quick_run_records_the_lesson_and_judges_nothing(run):
    assert_quick_run(run, "05_conditional_vae", "fashion-mnist-builtin", VERDICTS)
    summary = run[1]
    assert summary["epochs"] == 1 and summary["nll_k"] == 20 and summary["n_test"] == 100


def test_the_command_line_set_the_first_cells_settings(run):
    namespace = run[2]
    assert namespace["QUICK"] is True and namespace["PROGRESS"] is False
    assert namespace["DATASET"] == "fashion-mnist-builtin"
    assert namespace["OUT"] == str(run[0].parent)
    # the settings a learner edits keep the full run's values; QUICK shrinks what it uses
    assert namespace["EPOCHS"] == 10 and namespace["NLL_K"] == 500 and namespace["LATENT"] == 2
    assert namespace["epochs"] == 1 and namespace["nll_k"] == 20


def test_every_figure_is_a_png(run):
    assert_figures(run[0], FIGURES)


def test_both_models_have_the_same_networks(run):
    folder = run[0]
    cvae, _ = load_model(folder / "cvae_training" / "checkpoint.npz", expect_kind="cvae")
    vae, _ = load_model(folder / "vae_training" / "checkpoint.npz", expect_kind="vae")
    assert cvae.n_classes == 10
    for key in ("hidden", "latent", "activation", "likelihood", "x_dim"):
        assert cvae.config[key] == vae.config[key], key
    assert cvae.config["hidden"] == [64] and cvae.latent == 2
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


def test_sample_agreement_is_per_class_and_the_bar_follows(summary):
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
    assert summary["style_transfer_redraws_the_class"] is (other >= 0.95)


def test_interpolation_and_arithmetic_numbers(summary):
    s = summary
    assert s["interpolation_pairs"] == 30
    assert 0.0 <= s["cvae_interpolation_agreement"] <= 1.0
    assert 0.0 <= s["vae_interpolation_third_class"] <= 1.0
    assert s["interpolation_keeps_the_label"] is (s["cvae_interpolation_agreement"] >= 0.95)
    assert s["arithmetic_alphas"] == [-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5]
    assert len(s["arithmetic_ink"]) == len(s["arithmetic_agreement"]) == 7
    assert all(0.0 < v < 1.0 for v in s["arithmetic_ink"])
    assert all(0.0 <= v <= 1.0 for v in s["arithmetic_agreement"])
    assert s["stroke_vector_norm"] > 0 and -1.0 <= s["stroke_vector_mean_cosine"] <= 1.0
    rises = bool(np.all(np.diff(s["arithmetic_ink"]) > 0))
    assert s["stroke_vector_adds_ink_and_keeps_the_class"] is (
        rises and min(s["arithmetic_agreement"]) >= 0.95
    )


def test_probe_accuracies_are_counts_of_test_codes(summary):
    for tag in ("vae", "cvae"):
        acc = summary[f"{tag}_probe_accuracy"]
        assert 0.0 <= acc <= 1.0 and is_multiple_of(acc, 1 / 500)
    assert summary["z_leaves_the_class_to_y"] is (
        summary["cvae_probe_accuracy"] < summary["vae_probe_accuracy"]
    )


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
        s["decomposition_label_term"] + s["decomposition_density_term"], abs=1e-3
    )
    assert s["gain_is_mostly_the_density_term"] is (
        s["decomposition_density_term"] > s["decomposition_label_term"]
    )
    acc = s["cvae_bayes_classifier_accuracy"]
    assert 0.0 <= acc <= 1.0 and is_multiple_of(acc, 1 / s["decomposition_images"])


def test_the_lessons_own_helpers(run):
    namespace = run[2]
    y = namespace["y_test"]
    shown = namespace["shown"]  # the first test image of each class, in class order
    assert [int(y[i]) for i in shown] == list(range(10))
    assert all(not np.any(y[:i] == c) for c, i in enumerate(shown))
    hit = np.zeros(len(y), dtype=bool)
    hit[y == 3] = True
    assert list(namespace["per_class"](hit, y)) == [float(c == 3) for c in range(10)]


def test_common_batches_give_what_one_call_gives():
    rng = np.random.default_rng(0)
    x = (rng.random((7, 12)) < 0.5).astype(np.float32)  # (7, 12) binary images
    y = rng.integers(0, 3, size=7)
    mv.manual_seed(0)
    cvae, vae = ConditionalVAE(12, (8,), 2, n_classes=3), VAE(12, (8,), 2)
    for model, labels in ((cvae, y), (vae, None)):
        mu = common.encode_mean(model, x, labels, batch_size=3)  # three batches: 3, 3, 1
        whole = model.encode(mv.Tensor(x), labels)[0].data
        assert mu.shape == (7, 2) and mu.dtype == np.float64
        np.testing.assert_allclose(mu, mv.backend.to_numpy(whole), rtol=1e-6)
        _, log_var = common.encode(model, x, labels, batch_size=3)  # log σ², batched alike
        np.testing.assert_allclose(log_var, mv.backend.to_numpy(
            model.encode(mv.Tensor(x), labels)[1].data), rtol=1e-6, atol=1e-6)  # fmt: skip
        means = common.decode(model, mu, labels, batch_size=2)
        assert means.shape == (7, 12) and np.all((means > 0) & (means < 1))
        np.testing.assert_allclose(means, mv.backend.to_numpy(model.decode(
            mv.Tensor(mu.astype(np.float32)), labels).data), rtol=1e-5)  # fmt: skip
    # the label changes the decoded image of the same code: the decoder reads it
    assert not np.allclose(common.decode(cvae, mu[:1], [0]), common.decode(cvae, mu[:1], [1]))


def test_common_classifier_learns_two_blobs_and_predicts_in_batches():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, size=400)
    x = (rng.standard_normal((400, 2)) + 4.0 * np.stack([y, -y], axis=1)).astype(np.float32)
    mv.manual_seed(1)
    printed = []
    clf = common.train_classifier(x, y, [2, 2], epochs=20, lr=1e-2, batch_size=32,
                                  rng=np.random.default_rng([0, 1]), log=printed.append)  # fmt: skip
    assert len(printed) == 20 and all("cross-entropy" in line for line in printed)  # one per epoch
    pred = common.predict(clf, x, batch_size=64)
    assert pred.shape == (400,) and np.mean(pred == y) > 0.95
    logits = mv.backend.to_numpy(clf(mv.Tensor(x)).data)
    np.testing.assert_array_equal(pred, logits.argmax(axis=1))


def test_lesson_reads_as_a_notebook():
    assert_notebook_form(FILENAME, {"DATASET", "EPOCHS", "LATENT", "NLL_K"}, 7, cited=(
        'VAE Extensions slides, "Conditional VAE (Supervised VAE)"',
        'Understanding Deep Learning, ch. 17, "VAE applications [1]"',
        "docs/ERRATA.md#e20-plus-kl-in-the-conditional-bound",
    ))  # fmt: skip
