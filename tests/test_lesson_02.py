"""Lesson 02 (the VAE: what it is and what it learns) as a script in quick mode: its claims, figures.

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

FILENAME = "02_vae.py"
FIGURES = {
    "2_latent_space_autoencoder.png",
    "2_latent_space_vae.png",
    "3_latent_manifold_2d.png",
    "3_prior_samples_z2_vs_z20.png",
    "4_gaussian_decoder_reconstructions.png",
    "4_gaussian_decoder_samples.png",
    "4_kl_error_active_units.png",
}
VERDICTS = (
    "by_hand_is_the_library",
    "vae_codes_closer_to_the_prior",
    "z20_beats_z2",
    "kl_falls_as_sigma_grows",
    "sigma_1_blurs_more",
    "gaussian_nll_is_the_alpha_cost",
)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """python lessons/02_vae.py --quick --out tmp --dataset fashion-mnist-builtin --epochs 2, once:
    (output folder, summary.json, the lesson's namespace, what it printed)."""
    return run_script(tmp_path_factory.mktemp("lesson_02"), FILENAME, "--dataset",
                      "fashion-mnist-builtin", "--no-progress", "--epochs", "2")  # fmt: skip


@pytest.fixture(scope="module")
def summary(run):
    return run[1]


def test_a_quick_run_records_the_lesson_and_judges_nothing(run):
    assert_quick_run(run, "02_vae", "fashion-mnist-builtin", VERDICTS)
    summary = run[1]
    # these two hold at any size; the others need the full run
    assert summary["by_hand_is_the_library"] and summary["gaussian_nll_is_the_alpha_cost"]


def test_the_command_line_set_the_first_cells_settings(run):
    namespace = run[2]
    assert namespace["QUICK"] is True and namespace["PROGRESS"] is False
    assert namespace["OUT"] == str(run[0].parent)
    assert namespace["DATASET"] == "fashion-mnist-builtin"
    assert namespace["EPOCHS"] == 2  # from --epochs: given, it holds in QUICK mode too
    assert namespace["SMALL"]["epochs"] == 2


def test_every_figure_exists_and_is_a_png(run):
    assert_figures(run[0], FIGURES)


def test_checkpoints_are_kept_in_the_lesson_folder(run):
    folder = run[0] / "small_models"
    names = ("ae_2d", "vae_2d", "vae_20d", "vae_gaussian_sigma_0.05", "vae_gaussian_sigma_0.2",
             "vae_gaussian_sigma_1")  # fmt: skip
    for name in names:
        assert (folder / name / "checkpoint.npz").is_file(), name
        log = (folder / name / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
        assert len(log) == 2, name  # the 2 epochs of --epochs 2, a fresh log


def test_elbo_by_hand_is_the_library_elbo(summary):
    # PGM Lecture 30 and Computational Intelligence Lab, Series 9, Problem 1: z = μ + σ ε,
    # log p(x|z) − ½ Σ (μ² + σ² − 1 − log σ²), the same ε, in float64
    for key in ("recon", "kl", "elbo", "grad"):
        assert summary[f"by_hand_minus_library_{key}"] < 1e-10, key
    assert math.isfinite(summary["by_hand_elbo_mean"]) and summary["by_hand_elbo_mean"] < 0


def test_reparameterized_samples_and_closed_form_kl(summary):
    # z = μ + σ ε has mean μ and standard deviation σ (20 units, 10,000 draws: errors ≈ 0.01)
    assert summary["reparam_mean_error"] < 0.06
    assert summary["reparam_std_error"] < 0.06
    # Problem 1.7: the closed form is the expectation of log q(z) − log p(z)
    gap = abs(summary["kl_closed_form_example0"] - summary["kl_monte_carlo_example0"])
    assert summary["kl_closed_form_example0"] > 0
    assert gap < 5 * summary["kl_monte_carlo_se"]


def test_latent_space_numbers(summary):
    for key in ("ae2", "vae2"):
        assert len(summary[f"{key}_code_mean"]) == 2
        eig = summary[f"{key}_code_cov_eigenvalues"]
        assert len(eig) == 2 and all(v > 0 for v in eig)
        assert summary[f"{key}_code_gaussian_kl"] >= 0
        assert summary[f"{key}_code_radius_95"] > 0
    assert summary["vae2_test_kl"] > 0
    assert summary["vae2_test_elbo"] == pytest.approx(
        summary["vae2_test_recon"] - summary["vae2_test_kl"], abs=0.01
    )
    assert summary["vae_codes_closer_to_the_prior"] == (
        summary["vae2_code_gaussian_kl"] < summary["ae2_code_gaussian_kl"]
    )
    assert summary["z20_beats_z2"] == (
        summary["vae20_small_test_elbo"] > summary["vae2_small_test_elbo"]
    )


def test_gaussian_decoder_is_the_alpha_weighted_cost(summary, run):
    # PGM Lecture 30: −log N(x; g(z), σ² I) = α ‖x − g(z)‖² + D/2 log 2πσ², with α = 1/(2σ²)
    for sigma in run[2]["SIGMAS"]:
        key = f"sigma_{sigma:g}"
        assert summary[f"{key}_alpha"] == pytest.approx(1 / (2 * sigma**2))
        assert summary[f"{key}_nll_minus_alpha_se"] < 1e-4, key
        assert summary[f"{key}_kl"] > 0 and summary[f"{key}_se"] > 0
        assert summary[f"{key}_cost"] == pytest.approx(
            summary[f"{key}_alpha"] * summary[f"{key}_se"] + summary[f"{key}_kl"], rel=1e-4
        )
    for key in ("sigma_0.05", "sigma_0.2", "sigma_1", "bernoulli"):
        assert 0 <= summary[f"{key}_active_units"] <= 20
        assert summary[f"{key}_aggregate_variance"] > 0
        assert summary[f"{key}_sharpness_prior"] > 0 and summary[f"{key}_sharpness_fitted"] > 0


def test_lesson_reads_as_a_notebook():
    text = assert_notebook_form(FILENAME, {"DATASET", "EPOCHS"}, 4, cited=(
        'PGM Lecture 30, "Reparameterization Trick"',
        "Problem 1.7",
        "Fig. 1a",
        "Generation Samples",
        "../docs/ERRATA.md#e3-normaliser-of-the-gaussian-decoder",
        "ERRATA.md#e14-generation-does-not-run-the-encoder",
    ))  # fmt: skip
    assert "common.pick(((400,), (64,)), QUICK)" in text  # 784-400-20, quick 784-64-20
