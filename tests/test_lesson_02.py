"""Lesson 02 (the VAE) in --quick mode: the numbers it claims, and its figures.

The lesson runs once per test session (about 10 s, on the built-in Fashion-MNIST
subset so that no download is needed); each test then checks one claim of the
lecture against summary.json.
"""

from __future__ import annotations

import math

import pytest
from lesson_loader import LESSONS, assert_figures, load_lesson, run_quick

FIGURES = {
    "2_latent_spaces_ae_vs_vae.png",
    "3_latent_manifold_2d.png",
    "3_prior_samples_z2_vs_z20.png",
    "4_gaussian_decoder_reconstructions.png",
    "4_gaussian_decoder_samples.png",
    "4_kl_error_active_units.png",
    "5_gradient_variance_vs_L.png",
    "6_kl_estimator_gradient_variance.png",
    "7_training_curves.png",
    "7_is_estimate_vs_k.png",
    "7_is_minus_elbo_per_image.png",
    "7_active_units.png",
    "7_reconstructions.png",
    "7_samples.png",
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Run the quick lesson once: (output folder, summary.json, main's return, the module)."""
    out = tmp_path_factory.mktemp("lesson_02")
    return run_quick(out, "02_vae.py", "--dataset", "fashion-mnist-builtin", "--no-progress")


@pytest.fixture(scope="module")
def summary(run):
    return run[1]


def test_summary_is_what_main_returns(run):
    _, summary, returned, lesson = run
    assert summary == returned
    assert summary["lesson"] == "02_vae"
    assert summary["quick"] is True
    assert summary["dataset"] == "fashion-mnist-builtin"
    assert summary["epochs"] == lesson.EPOCHS[1]
    assert summary["nll_k"] == lesson.NLL_K[1]


def test_every_figure_exists_and_is_a_png(run):
    assert_figures(run[0], FIGURES)


def test_checkpoints_are_kept_in_the_lesson_folder(run):
    folder = run[0]
    assert (folder / "vae_training" / "checkpoint.npz").is_file()
    log = (folder / "vae_training" / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(log) == run[1]["epochs"]  # one line per epoch, not appended to an old log
    for name in ("ae_2d", "vae_2d", "vae_20d", "vae_gaussian_sigma_1"):
        assert (folder / "small_models" / name / "checkpoint.npz").is_file(), name


def test_elbo_by_hand_is_the_library_elbo(summary):
    # seed 000 and 001: z = μ + σ ε, log p(x|z) − ½ Σ (μ² + σ² − 1 − log σ²), same ε
    for key in ("recon", "kl", "elbo", "grad"):
        assert summary[f"by_hand_minus_library_{key}"] < 1e-5, key
    assert math.isfinite(summary["by_hand_elbo_mean"]) and summary["by_hand_elbo_mean"] < 0


def test_reparameterized_samples_and_closed_form_kl(summary):
    # z = μ + σ ε has mean μ and standard deviation σ (20 units, 10,000 draws: errors ≈ 0.01)
    assert summary["reparam_mean_error"] < 0.06
    assert summary["reparam_std_error"] < 0.06
    # seed 001, Problem 1.7: the closed form is the expectation of log q(z) − log p(z)
    gap = abs(summary["kl_closed_form_example0"] - summary["kl_monte_carlo_example0"])
    assert summary["kl_closed_form_example0"] > 0
    assert gap < 5 * summary["kl_monte_carlo_se"]


def test_latent_space_numbers(summary):
    for key in ("ae2", "vae2"):
        assert len(summary[f"{key}_code_mean"]) == 2
        eig = summary[f"{key}_code_cov_eigenvalues"]
        assert len(eig) == 2 and all(v > 0 for v in eig)
        assert summary[f"{key}_code_gaussian_kl"] >= 0
    assert summary["vae2_test_kl"] > 0
    assert summary["vae2_test_elbo"] == pytest.approx(
        summary["vae2_test_recon"] - summary["vae2_test_kl"], abs=0.01
    )


def test_gaussian_decoder_is_the_alpha_weighted_cost(summary, run):
    # seed 000: −log N(x; g(z), σ² I) = α ‖x − g(z)‖² + D/2 log 2πσ², with α = 1/(2σ²)
    for sigma in run[3].SIGMAS:
        key = f"sigma_{sigma:g}"
        assert summary[f"{key}_alpha"] == pytest.approx(1 / (2 * sigma**2))
        assert summary[f"{key}_nll_minus_alpha_se"] < 1e-4, key
        assert summary[f"{key}_kl"] > 0 and summary[f"{key}_se"] > 0
        assert 0 <= summary[f"{key}_active_units"] <= 20


def test_more_samples_per_example_lower_the_gradient_variance(summary):
    # seed 001, Problem 1.4: averaging L independent gradients divides the covariance by L
    assert summary["grad_var_L20"] < summary["grad_var_L5"] < summary["grad_var_L1"]
    assert 2.5 < summary["grad_var_ratio_L1_over_L5"] < 10
    assert 10 < summary["grad_var_ratio_L1_over_L20"] < 40
    assert summary["grad_snr_L20"] > summary["grad_snr_L1"]


def test_closed_form_kl_has_the_smaller_gradient_variance(summary):
    # seed 001, Problem 1.7: the closed-form KL's gradient is exact, the Monte-Carlo one noisy
    assert summary["grad_var_elbo_mc_kl"] > summary["grad_var_elbo_analytic_kl"]
    assert summary["grad_var_ratio_mc_over_analytic"] > 1
    assert summary["grad_var_kl_term_analytic"] == 0
    assert summary["grad_var_kl_term_mc"] > 0


def test_importance_sampled_likelihood_is_above_the_elbo(summary):
    # seed 003, Applications: log (1/K) Σ w_k is a tighter lower bound than the ELBO
    assert math.isfinite(summary["test_nll"]) and summary["test_nll"] > 0
    assert summary["test_is_minus_elbo"] > 0
    assert -summary["test_nll"] > summary["test_elbo"]
    assert summary["test_is_above_elbo_fraction"] > 0.5
    curve = summary["is_curve_log_px"]
    assert len(curve) == len(summary["is_curve_k"]) and curve[-1] > curve[0]
    assert 0 <= summary["active_units"] <= 20
    assert summary["torch_reference_nll"] is None  # no PyTorch number for 1 epoch
    assert summary["literature_nll"] == 89.8


def test_lesson_options():
    lesson = load_lesson("02_vae.py")
    args = lesson.lesson_args(["--quick", "--epochs", "30", "--nll-k", "5000", "--seed", "3"])
    assert (args.epochs, args.nll_k, args.seed, args.quick) == (30, 5000, 3, True)
    args = lesson.lesson_args([])
    assert args.epochs is None and args.nll_k is None  # the defaults of EPOCHS and NLL_K
    for bad in (["--epochs", "0"], ["--nll-k", "-5"], ["--bogus"]):
        with pytest.raises(SystemExit):
            lesson.lesson_args(bad)
    assert lesson.TORCH_REFERENCE_NLL == {10: 97.1, 30: 93.9, 100: 91.6}
    assert lesson.EPOCHS[0] == 10 and lesson.NLL_K[0] == 1000


def test_lesson_reads_as_a_lesson():
    text = (LESSONS / "02_vae.py").read_text(encoding="utf-8")
    lesson = load_lesson("02_vae.py")
    assert "python lessons/02_vae.py [--quick]" in lesson.__doc__
    assert text.count("# %% [markdown]") >= 9  # setup, seven parts, the runner
    for cited in ("seed 000", "seed 001, Problem 1.7", "Problem 1.4", "Fig. 1a", "seed 002",
                  "seed 003"):  # fmt: skip
        assert cited in text, cited
    assert lesson.HIDDEN[0] == (400,) and lesson.LATENT == 20 and lesson.BATCH_SIZE == 128
    assert lesson.LEARNING_RATE == 1e-3
