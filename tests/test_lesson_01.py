"""Lesson 01 (the autoencoder) run as a script in quick mode: the numbers it claims, its figures.

The lesson runs once per test session (seconds, on the built-in Fashion-MNIST subset so
that no download is needed); each test then checks one claim of the lecture against
summary.json. tests/test_notebooks.py runs it as a notebook.
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

from lessons import common
from minivae.models import build_model

FILENAME = "01_autoencoder.py"
FIGURES = {
    "1_training_curve.png",
    "2_reconstructions.png",
    "3_code_space.png",
    "4_codes_vs_prior.png",
    "5_decoded_prior_samples.png",
    "5_decoded_fitted_gaussian_samples.png",
    "5_classifier_confidence.png",
    "5_predicted_classes.png",
    "5_prior_samples_by_code_scale.png",
}
VERDICTS = (
    "autoencoder_beats_pca",
    "codes_are_not_standard_normal",
    "rescaling_keeps_the_loss",
    "prior_samples_miss_the_codes",
    "decoder_extrapolates_off_the_codes",
    "prior_decodes_are_the_wrong_mix",
    "confidence_barely_notices",
    "no_code_scale_makes_the_prior_work",
)
KINDS = ("real", "recon", "prior", "fitted")  # the kinds of images the classifier scores


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """python lessons/01_autoencoder.py --quick --out tmp --dataset fashion-mnist-builtin, once:
    (output folder, summary.json, the lesson's namespace, what it printed)."""
    return run_script(tmp_path_factory.mktemp("lesson_01"), FILENAME,
                      "--dataset", "fashion-mnist-builtin", "--no-progress")  # fmt: skip


@pytest.fixture(scope="module")
def summary(run):
    return run[1]


def test_a_quick_run_records_the_lesson_and_judges_nothing(run):
    assert_quick_run(run, "01_autoencoder", "fashion-mnist-builtin", VERDICTS)


def test_the_command_line_set_the_first_cells_settings(run):
    namespace = run[2]
    assert namespace["QUICK"] is True and namespace["PROGRESS"] is False
    assert namespace["DATASET"] == "fashion-mnist-builtin"
    assert namespace["OUT"] == str(run[0].parent)
    assert namespace["EPOCHS"] == 6 and namespace["SEED"] == 0  # the first cell's defaults
    assert namespace["LATENT"] == 2 and namespace["LIKELIHOOD"] == "mse"


def test_every_figure_exists_and_is_a_png(run):
    folder = run[0]
    assert_figures(folder, FIGURES)
    # the autoencoder was trained with minivae.train: its checkpoint and log are kept
    assert (folder / "ae_training" / "checkpoint.npz").is_file()
    log = (folder / "ae_training" / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(log) == len(run[1]["val_se_per_epoch"])  # one line per epoch, not appended


def test_reconstruction_error_falls_during_training(summary):
    # PGM Lecture 30, "Autoencoders": training minimises Σ ‖g(f(x)) − x‖²
    train_se, val_se = summary["train_se_per_epoch"], summary["val_se_per_epoch"]
    assert len(train_se) == len(val_se) == 3  # QUICK: at most 3 epochs
    assert all(math.isfinite(v) and v > 0 for v in train_se + val_se)
    assert val_se[-1] < val_se[0]
    assert train_se[-1] < train_se[0]
    # the best linear 2-D code (PCA) beats predicting the mean image
    assert 0 < summary["test_se_pca2"] < summary["test_se_mean_image"]
    assert math.isfinite(summary["test_se"]) and summary["test_se"] > 0


def test_code_moments_are_not_those_of_the_prior(summary):
    # PGM Lecture 30, "Generating Data Using Autoencoders": the distribution of z is not N(0, I)
    eig = np.array(summary["code_cov_eigenvalues"])
    assert eig.shape == (2,) and np.all(eig > 0)
    assert np.max(np.abs(np.log(eig))) > math.log(2)  # some direction off by a factor of 2
    assert summary["code_gaussian_kl"] > 0.5
    # the KL printed is the closed form ½ (tr S + mᵀm − d − log det S) of the printed moments
    m, s = np.array(summary["code_mean"]), np.array(summary["code_cov"])
    kl = 0.5 * (np.trace(s) + m @ m - 2 - np.log(np.linalg.det(s)))
    assert summary["code_gaussian_kl"] == pytest.approx(kl, rel=0.02, abs=0.02)
    assert summary["code_mean_norm"] == pytest.approx(np.linalg.norm(m), rel=1e-3, abs=1e-3)


def test_rescaling_the_code_leaves_the_loss_unchanged(summary):
    # the loss does not fix the code's scale: c f(x) decoded by g(z / c) is the same network
    factors = summary["rescale_factors"]
    assert factors == sorted(factors) and 1.0 in factors and len(factors) >= 3
    ses = summary["rescale_test_se"]
    assert max(ses) - min(ses) < 1e-3 * summary["test_se"]
    assert ses[factors.index(1.0)] == pytest.approx(summary["test_se"], rel=1e-3)
    kls = summary["rescale_code_kl"]
    assert max(kls) - min(kls) > 1.0  # ... while the code's distance from N(0, I) changes
    assert summary["rescaling_keeps_the_loss"] is True


def test_no_code_scale_makes_the_prior_work(summary):
    # the twins decode the same z ~ N(0, I): small codes leave the prior far outside them
    # (the decoder extrapolates), large ones give only the classes near the origin
    outside = summary["rescale_outside_prior"]
    assert len(outside) == len(summary["rescale_factors"])
    assert outside[0] > outside[-1]  # factors ascending: the smallest code first
    for entropy in summary["rescale_entropy_prior"]:
        assert entropy < summary["class_entropy_real"] - 0.2


def test_prior_samples_miss_the_codes(summary):
    # "near" is defined so that NEAR_QUANTILE of test codes are near: a calibration check
    assert summary["near_fraction_test"] == pytest.approx(0.99, abs=0.01)
    assert summary["near_fraction_prior"] < 0.5
    assert summary["near_fraction_prior"] < summary["near_fraction_fitted"]
    assert summary["nearest_code_median_prior"] > 3 * summary["nearest_code_median_test"]
    assert summary["prior_samples_miss_the_codes"] is True


def test_decoder_extrapolates_off_the_codes(summary):
    # real images are in [0, 1]; the decoder leaves that range mostly where it saw no codes
    assert summary["outside_fraction_real"] == 0
    assert summary["outside_fraction_prior"] > 2 * summary["outside_fraction_recon"]
    assert summary["outside_fraction_prior_far"] > summary["outside_fraction_prior_near"]


def test_classifier_scores(summary):
    assert summary["classifier_test_accuracy"] > 0.5  # chance is 0.1
    for kind in KINDS:
        assert 0.1 <= summary[f"confidence_{kind}"] <= 1.0, kind
        assert 0.0 <= summary[f"class_entropy_{kind}"] <= math.log(10) + 1e-9, kind
        assert 0.1 <= summary[f"top_class_share_{kind}"] <= 1.0, kind
        assert sum(summary[f"class_histogram_{kind}"]) == pytest.approx(1.0, abs=1e-3), kind
    # the test set has every class about equally often; decodes of z ~ N(0, I) do not
    assert summary["class_entropy_real"] > 0.95 * math.log(10)
    assert summary["class_entropy_prior"] < summary["class_entropy_real"] - 0.2


def test_shared_helpers_encode_decode_and_the_gaussian_kl():
    # lessons/common.py's batch helpers give what the model gives in one pass
    model = build_model({"kind": "ae", "hidden": [8], "latent": 2, "likelihood": "mse"})
    x = np.random.default_rng(0).random((7, 784))
    z = common.encode_mean(model, x, batch_size=3)  # three batches: 3 + 3 + 1 rows
    assert z.shape == (7, 2) and z.dtype == np.float64
    whole = common.encode_mean(model, x, batch_size=100)
    assert np.allclose(z, whole, atol=1e-5)
    assert common.encode(model, x)[1] is None  # an autoencoder has no log σ²
    assert common.decode(model, z, batch_size=2).shape == (7, 784)
    # KL(N(m, S) ‖ N(0, I)): 0 at the prior; the diagonal case is Series 9, Problem 1.7's sum
    assert common.gaussian_kl_to_standard(np.zeros(2), np.eye(2)) == pytest.approx(0.0, abs=1e-12)
    mu, var = np.array([0.5, -1.0]), np.array([0.3, 2.0])
    diagonal = -0.5 * np.sum(1 + np.log(var) - mu**2 - var)
    assert common.gaussian_kl_to_standard(mu, np.diag(var)) == pytest.approx(diagonal)
    with pytest.raises(ValueError, match="positive definite"):
        common.gaussian_kl_to_standard(np.zeros(2), -np.eye(2))  # det > 0


def test_lesson_reads_as_a_notebook():
    assert_notebook_form(FILENAME, {"DATASET", "EPOCHS"}, 5, cited=(
        "PGM Lecture 30",
        '"Generating Data Using Autoencoders"',
        "Computational Intelligence Lab, Series 9",
        "Fig. 1a",
        "Problem 1.7",
        "docs/ERRATA.md#e10-",
        "docs/ERRATA.md#e14-",
    ))  # fmt: skip
