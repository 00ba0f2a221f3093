"""Lesson 00 (latent variable models) run as a script in quick mode: the claims it checks, its figures.

The lesson runs once per test session (a few seconds); each test then checks one
claim of the lecture against summary.json. tests/test_notebooks.py runs it as a notebook.
"""

from __future__ import annotations

import pytest
from lesson_loader import (
    assert_figures,
    assert_notebook_form,
    assert_quick_run,
    run_script,
)

FILENAME = "00_latent_variable_models.py"
FIGURES = {
    "1_mixture_of_gaussians.png",
    "2_nonlinear_latent_variable_model.png",
    "3_jensen_inequality.png",
    "4_elbo_and_kl_gap.png",
    "5_importance_sampling.png",
    "5_importance_proposals.png",
    "6_gradient_running_means.png",
    "6_gradient_estimators.png",
}
VERDICTS = (
    "p_x_integrates_to_one",
    "ancestral_samples_follow_p_x",
    "jensen_holds",
    "elbo_gap_is_the_kl",
    "only_the_posterior_closes_the_gap",
    "importance_sampling_order",
    "gradients_unbiased",
    "reparameterization_has_lower_variance",
)
MAX_Z = 4.0  # a Monte Carlo mean within this many standard errors of the exact value


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """python lessons/00_latent_variable_models.py --quick --out tmp, once:
    (output folder, summary.json, the lesson's namespace, what it printed)."""
    return run_script(tmp_path_factory.mktemp("lesson_00"), FILENAME)


@pytest.fixture(scope="module")
def summary(run):
    return run[1]


def test_a_quick_run_records_the_lesson_and_judges_nothing(run):
    assert_quick_run(run, "00_latent_variable_models", None, VERDICTS)
    summary = run[1]
    assert all(summary[key] is True for key in VERDICTS)  # every claim holds at any size


def test_the_command_line_set_the_first_cells_settings(run):
    namespace = run[2]
    assert namespace["QUICK"] is True  # from --quick
    assert namespace["OUT"] == str(run[0].parent)  # from --out
    assert namespace["PHI"] == 0.5 and namespace["SEED"] == 0  # the defaults of the first cell


def test_every_figure_exists_and_is_a_png(run):
    assert_figures(run[0], FIGURES)


def test_marginals_integrate_to_one(summary):
    # Understanding Deep Learning, eq. 17.4 (mixture), eq. 17.7 (nonlinear model), Bayes' rule
    for key in ("mog_integral", "nonlinear_integral", "posterior_integral"):
        assert summary[key] == pytest.approx(1.0, abs=1e-3), key


def test_ancestral_samples_follow_p_x(summary):
    # Fig. 17.3: the samples' CDF is within the 95 % Kolmogorov-Smirnov band
    assert 0 < summary["nonlinear_ks"] < summary["nonlinear_ks_critical_95"]


def test_jensen_inequality(summary):
    # eq. 17.12: log E[y] >= E[log y]; for a log-normal y the gap is s²/2
    assert summary["jensen_two_points_log_E_y"] > summary["jensen_two_points_E_log_y"]
    assert summary["jensen_log_E_y"] > summary["jensen_E_log_y"]
    gap = summary["jensen_log_E_y"] - summary["jensen_E_log_y"]
    assert gap == pytest.approx(summary["jensen_gap_exact"], abs=0.05)


def test_elbo_is_a_lower_bound_and_its_gap_is_the_kl(summary):
    # eq. 17.17: ELBO = log p(x) - KL(q ‖ p(z|x)), for every Gaussian q tried
    assert summary["n_gaussians"] > 100
    assert summary["max_elbo_minus_log_px"] < 0
    assert summary["max_gap_minus_kl"] < 1e-6
    # eq. 17.16 and eq. 17.18 (closed-form KL to the prior) give the same ELBO
    assert summary["max_elbo_1716_minus_1718"] < 1e-6


def test_best_gaussian_is_close_but_only_the_posterior_is_tight(summary):
    # the nonlinear model's posterior is not Gaussian: the best Gaussian leaves a small gap,
    # smaller than the Gaussian with the posterior's own mean and std
    assert 0 < summary["best_q_gap"] < summary["moment_matched_q_gap"]
    assert summary["best_q_gap"] < 0.5
    # linear-Gaussian model: q = the exact posterior closes the gap
    assert abs(summary["linear_log_px_error"]) < 1e-6
    assert abs(summary["linear_gap_at_posterior"]) < 1e-6
    assert abs(summary["linear_kl_at_posterior"]) < 1e-6


def test_importance_sampling_error_depends_on_the_proposal(summary):
    good, prior, narrow = (summary[f"is_{k}_rel_error_K1000"] for k in ("good", "prior", "narrow"))
    assert good < prior < narrow
    assert good < 0.05
    # the good and prior proposals are unbiased: measured errors match sqrt(Var(w) / K) / p(x)
    for key in ("is_good", "is_prior"):
        measured = summary[f"{key}_rel_error_K1000"]
        predicted = summary[f"{key}_predicted_rel_error_K1000"]
        assert measured == pytest.approx(predicted, rel=0.5), key
    # the too-narrow one misses posterior mass: its typical estimate is too low
    assert summary["is_narrow_median_ratio_K1000"] < 0.95


def test_both_gradient_estimators_are_unbiased(summary):
    assert summary["sin_gradcheck_ok"] is True
    assert summary["grad_exact_vs_central_difference"] < 1e-6
    for key in ("grad_reparam", "grad_score"):
        mean, se = summary[f"{key}_mean"], summary[f"{key}_se"]
        assert abs(mean - summary["grad_exact"]) < MAX_Z * se, key


def test_reparameterization_has_smaller_variance(summary):
    assert summary["grad_reparam_var"] < summary["grad_score_var"]
    assert summary["grad_variance_ratio"] > 2


def test_lesson_reads_as_a_notebook():
    assert_notebook_form(FILENAME, set(), 6, cited=(
        "Understanding Deep Learning, ch. 17, eq. 17.14-17.18",
        "PGM Lecture 30",
        "Computational Intelligence Lab, Series 9",
    ))  # fmt: skip
