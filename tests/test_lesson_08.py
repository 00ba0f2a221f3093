"""Lesson 08 (full covariance and amortization) run as a script in quick mode: its claims, its figures.

The lesson runs once per test session (well under a minute); each test then checks one
claim against summary.json. tests/test_notebooks.py runs it as a notebook.
"""

from __future__ import annotations

import itertools
import math

import pytest
from lesson_loader import (
    assert_figures,
    assert_notebook_form,
    assert_quick_run,
    run_script,
)

FILENAME = "08_full_covariance_and_amortization.py"
FIGURES = {
    "1_toy_posterior_fits.png",
    "2_cost_against_latent_size.png",
    "3_training_elbo.png",
    "4_amortization_gap.png",
}
# the claims that hold even at quick mode's sizes
VERDICTS = (
    "full_covariance_closes_the_gap",
    "per_example_beats_the_encoder",
    "per_example_bound_below_log_px",
)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """python lessons/08_full_covariance_and_amortization.py --quick --out tmp, once:
    (output folder, summary.json, the lesson's namespace, what it printed)."""
    return run_script(tmp_path_factory.mktemp("lesson_08"), FILENAME)


@pytest.fixture(scope="module")
def summary(run):
    return run[1]


def test_a_quick_run_records_the_lesson_and_judges_nothing(run):
    assert_quick_run(
        run, "08_full_covariance_and_amortization", ("mnist", "fashion-mnist-builtin"), VERDICTS
    )
    summary = run[1]
    assert all(summary[key] is True for key in VERDICTS)
    # timings, and claims about training that quick mode's budget cannot decide: only recorded
    for key in ("full_covariance_costs_d_squared", "encoder_is_much_cheaper",
                "full_vae_uses_correlations", "full_covariance_gains_less_than_the_encoder_loses",
                "amortization_gap_dominates"):  # fmt: skip
        assert isinstance(summary[key], bool), key


def test_the_command_line_set_the_first_cells_settings(run):
    namespace = run[2]
    assert namespace["QUICK"] is True and namespace["OUT"] == str(run[0].parent)
    assert (namespace["EPOCHS"], namespace["LATENT"], namespace["NLL_K"]) == (3, 20, 200)


def test_every_figure_exists_and_is_a_png(run):
    assert_figures(run[0], FIGURES)


def test_toy_full_covariance_closes_the_gap_and_the_diagonal_cannot(summary):
    assert summary["toy_rho"] == pytest.approx(-0.8, abs=1e-9)  # P = [[5, 4], [4, 5]]
    best = -0.5 * math.log(1 - 0.8**2)  # KL of the best mean-field q to a 2-D Gaussian
    assert summary["toy_best_diagonal_gap"] == pytest.approx(best, rel=1e-5)
    assert summary["toy_diagonal_gap"] == pytest.approx(best, abs=0.02)
    assert summary["toy_diagonal_gap"] >= best - 1e-9  # never below the best diagonal q
    assert summary["toy_diagonal_std_ratio"] == pytest.approx(0.6, abs=0.05)  # √(1 − ρ²): narrow
    assert 0 <= summary["toy_full_gap"] < 1e-2
    assert summary["toy_full_cov_error"] < 0.05
    # the same gap by sampling log p(x, z) - log q(z), with FullGaussian.log_prob
    assert abs(summary["toy_full_gap_by_sampling"] - summary["toy_full_gap"]) < 5e-3


def test_the_full_covariance_needs_quadratically_many_outputs(run):
    summary, hidden = run[1], run[2]["HIDDEN"]
    for d in run[2]["COST_LATENTS"]:
        cost = summary[f"cost_D{d}"]
        assert cost["outputs"] == [2 * d, d + d * (d + 1) // 2]
        extra = d * (d + 1) // 2 - d  # one more output per entry below L's diagonal
        assert cost["parameters"][1] - cost["parameters"][0] == (hidden + 1) * extra
        assert all(ms > 0 for ms in cost["ms"])


def test_both_vaes_are_bounds_and_differ_only_in_the_encoder(run):
    summary, ns = run[1], run[2]
    for c in ("diagonal", "full"):
        assert math.isfinite(summary[f"{c}_test_elbo"]) and summary[f"{c}_test_kl"] > 0
        assert summary[f"{c}_is_gap"] > 0  # log p̂(x) above the ELBO on the same images
        assert summary[f"{c}_train_seconds"] > 0
    latent, hidden = ns["LATENT"], ns["HIDDEN"]
    extra = (hidden + 1) * (latent * (latent + 1) // 2 - latent)
    assert summary["full_parameters"] - summary["diagonal_parameters"] == extra
    assert 0 < summary["full_mean_abs_correlation"] <= summary["full_max_abs_correlation"] <= 1


def test_per_example_inference_recovers_the_amortization_gap(summary):
    gain = summary["amortized_gain"]
    assert summary["amortized_steps"][0] == 0 and gain[0] == pytest.approx(0.0, abs=1e-6)
    assert all(b > a for a, b in itertools.pairwise(gain))  # every step count adds bound
    assert summary["amortization_gap"] == pytest.approx(gain[-1], abs=1e-4)
    assert summary["amortized_per_example_elbo"] > summary["amortized_encoder_elbo"]
    assert summary["amortized_log_px"] > summary["amortized_per_example_elbo"]
    assert summary["approximation_gap"] > 0
    assert summary["encoder_ms"] > 0 and summary["per_example_seconds"] > 0
    assert summary["steps_to_90_percent"] in summary["amortized_steps"][1:]


def test_lesson_reads_as_a_notebook():
    assert_notebook_form(FILENAME, {"DATASET"}, 4, cited=(
        "PGM Lecture 30",
        "Computational Intelligence Lab, Series 9",
        "the blog post 'Variational Autoencoders' (2018)",
        "Understanding Deep Learning, eq. 17.25",
        "ops.reparameterize_full",
        "ops.kl_full_std",
        "ops.cholesky_factor",
        "FullGaussian",
    ))  # fmt: skip
