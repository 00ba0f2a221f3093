"""Lesson 03 (the VAE's estimators and its test log-likelihood) as a script in quick mode.

The lesson runs once per test session (seconds, on the built-in Fashion-MNIST subset so that
no download is needed); each test then checks one claim of the lecture against summary.json.
tests/test_notebooks.py runs it as a notebook.
"""

from __future__ import annotations

import math

import pytest
from lesson_loader import (
    assert_figures,
    assert_notebook_form,
    assert_quick_run,
    run_script,
)

FILENAME = "03_vae_estimators_and_likelihood.py"
FIGURES = {
    "0_training_curves.png",
    "1_gradient_variance_vs_L.png",
    "2_kl_estimator_gradient_variance.png",
    "3_is_estimate_vs_k.png",
    "3_is_minus_elbo_per_image.png",
    "3_active_units.png",
    "3_reconstructions.png",
    "3_samples.png",
}
VERDICTS = (
    "variance_falls_as_one_over_L",
    "closed_form_kl_is_less_noisy",
    "is_estimate_above_the_elbo",
)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """python lessons/03_vae_estimators_and_likelihood.py --quick --out tmp
    --dataset fashion-mnist-builtin --epochs 2 --nll-k 150, once: (output folder,
    summary.json, the lesson's namespace, what it printed)."""
    return run_script(tmp_path_factory.mktemp("lesson_03"), FILENAME, "--dataset",
                      "fashion-mnist-builtin", "--no-progress", "--epochs", "2", "--nll-k",
                      "150")  # fmt: skip


@pytest.fixture(scope="module")
def summary(run):
    return run[1]


def test_a_quick_run_records_the_lesson_and_judges_nothing(run):
    assert_quick_run(run, "03_vae_estimators_and_likelihood", "fashion-mnist-builtin", VERDICTS)
    summary = run[1]
    assert "quality_bar" not in summary  # no PyTorch number for 2 epochs: no bar to judge


def test_the_options_set_the_settings_and_hold_in_quick_mode(run, summary):
    namespace = run[2]
    assert (namespace["EPOCHS"], namespace["NLL_K"]) == (2, 150)  # from the command line
    assert (summary["epochs"], summary["nll_k"]) == (2, 150)  # given: QUICK does not shrink them
    assert "for 2 epochs on the first 1,000 training images" in run[3]
    assert namespace["TORCH_REFERENCE_NLL"] == {10: 97.1, 30: 93.9, 100: 91.6}


@pytest.mark.parametrize("bad", [["--epochs", "0"], ["--nll-k", "-5"], ["--bogus"]])
def test_a_bad_option_stops_the_lesson_before_it_trains(tmp_path, bad):
    with pytest.raises(SystemExit):
        run_script(tmp_path, FILENAME, *bad)
    assert not (tmp_path / FILENAME[:-3] / "vae_training").exists()


def test_every_figure_exists_and_is_a_png(run):
    assert_figures(run[0], FIGURES)


def test_the_checkpoint_and_a_fresh_log_are_in_the_lesson_folder(run, summary):
    folder = run[0] / "vae_training"
    assert (folder / "checkpoint.npz").is_file()
    log = (folder / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(log) == summary["epochs"]  # one line per epoch, not appended to an old log


def test_more_samples_per_example_lower_the_gradient_variance(summary):
    # Computational Intelligence Lab, Series 9, Problem 1.4: averaging L independent gradients
    # divides the covariance by L
    assert summary["grad_var_L20"] < summary["grad_var_L5"] < summary["grad_var_L1"]
    assert 2.5 < summary["grad_var_ratio_L1_over_L5"] < 10
    assert 10 < summary["grad_var_ratio_L1_over_L20"] < 40
    assert summary["grad_snr_L20"] > summary["grad_snr_L1"]


def test_closed_form_kl_has_the_smaller_gradient_variance(summary):
    # Problem 1.7: the closed-form KL's gradient is exact, the Monte-Carlo one noisy
    assert summary["grad_var_elbo_mc_kl"] > summary["grad_var_elbo_analytic_kl"]
    assert summary["grad_var_elbo_analytic_kl"] == summary["grad_var_L1"]  # the same ε
    assert summary["grad_var_ratio_mc_over_analytic_encoder"] > 1
    # the KL does not reach the decoder: with the same ε its gradient is the same, draw for draw
    assert summary["grad_var_ratio_mc_over_analytic_decoder"] == pytest.approx(1.0, rel=1e-6)
    assert summary["grad_var_kl_term_analytic"] == 0
    assert summary["grad_var_kl_term_mc"] > 0
    assert summary["closed_form_kl_is_less_noisy"] is True


def test_importance_sampled_likelihood_is_above_the_elbo(summary):
    # Understanding Deep Learning, ch. 17, "VAE applications [1]": log (1/K) Σ w_k is a
    # tighter lower bound than the ELBO
    assert math.isfinite(summary["test_nll"]) and summary["test_nll"] > 0
    assert summary["n_test"] == 300
    assert summary["test_is_minus_elbo"] > 0
    assert -summary["test_nll"] > summary["test_elbo"]
    assert summary["test_is_above_elbo_fraction"] > 0.5
    curve = summary["is_curve_log_px"]
    assert summary["is_curve_k"] == [1, 3, 10, 30, 100]  # the K up to NLL_K
    assert len(curve) == 5 and curve[-1] > curve[0]
    assert 0 <= summary["active_units"] <= 20
    assert summary["torch_reference_nll"] is None  # no PyTorch number for 1 epoch
    assert summary["literature_nll"] == 89.8


def test_lesson_reads_as_a_notebook():
    text = assert_notebook_form(FILENAME, {"DATASET", "EPOCHS", "NLL_K"}, 3, cited=(
        "Problem 1.4",
        "Problem 1.7",
        '"VAE applications [1]"',
        "Burda et al. 2015",
        "../docs/ERRATA.md#e9-monte-carlo-average-divides-by-n-instead-of-l",
        "ERRATA.md#e12-what-is-intractable-is-the-integral",
    ))  # fmt: skip
    assert "common.pick(((400,), (64,)), QUICK)" in text  # 784-400-20, quick 784-64-20
