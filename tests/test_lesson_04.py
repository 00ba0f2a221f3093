"""Lesson 04 (the β-VAE) in --quick mode: the numbers it claims, and its figures.

The lesson runs once per test session (about 10 s: two β values, tiny data, the
built-in Fashion-MNIST subset so that no download is needed); each test then
checks one claim against summary.json.
"""

from __future__ import annotations

import math

import pytest
from lesson_loader import assert_figures, run_quick

FIGURES = {
    "1_shapes_factors.png",
    "2_rate_distortion_shapes.png",
    "2_rate_distortion_mnist.png",
    "2_active_units.png",
    "3_traversals_beta1.png",
    "3_traversals_beta16.png",
    "4_disentanglement_vs_beta.png",
    "4_mutual_information_matrices.png",
    "5_tcvae.png",
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Run the quick lesson once: (output folder, summary.json, main's return, the module)."""
    out = tmp_path_factory.mktemp("lesson_03")
    return run_quick(out, "04_beta_vae.py", "--dataset", "fashion-mnist-builtin", "--no-progress")


def test_summary_is_what_main_returns_and_quick(run):
    _, summary, returned, lesson = run
    assert summary == returned
    assert summary["quick"] is True and summary["lesson"] == "04_beta_vae"
    assert lesson.pick(lesson.BETAS, True) == (1, 16)
    assert lesson.BETAS[0] == (1, 2, 4, 8, 16)


def test_every_figure_is_a_png(run):
    assert_figures(run[0], FIGURES)


@pytest.mark.parametrize("tag", ["shapes", "mnist"])
def test_larger_beta_pays_less_rate_and_more_distortion(run, tag):
    _, s, *_ = run
    # the β = 16 model weighs the KL 16 times more: a much cheaper code ...
    assert s[f"{tag}_beta16_rate"] < 0.6 * s[f"{tag}_beta1_rate"]
    # ... bought with worse reconstructions, and (β = 1 optimizes it) a worse -ELBO
    assert s[f"{tag}_beta16_distortion"] > s[f"{tag}_beta1_distortion"]
    assert s[f"{tag}_beta16_neg_elbo"] >= s[f"{tag}_beta1_neg_elbo"] - 0.5
    for beta in (1, 16):
        assert s[f"{tag}_beta{beta}_rate"] > 0
        assert s[f"{tag}_beta{beta}_neg_elbo"] == pytest.approx(
            s[f"{tag}_beta{beta}_rate"] + s[f"{tag}_beta{beta}_distortion"], abs=1e-2)
        assert 0 <= s[f"{tag}_beta{beta}_active_units"] <= 10


def test_disentanglement_scores_are_in_range(run):
    _, s, *_ = run
    for key in ("shapes_beta1", "shapes_beta16", "tcvae"):
        assert 0.0 <= s[f"{key}_mig"] <= 1.0
        gaps = s[f"{key}_mig_per_factor"]
        assert len(gaps) == 5 and all(0.0 <= g <= 1.0 for g in gaps)
        assert s[f"{key}_mig"] == pytest.approx(sum(gaps) / 5, abs=1e-3)
        # the β-VAE metric is an accuracy on 50 balanced test points: a multiple of 1/50
        bvae = s[f"{key}_beta_vae_metric"]
        assert 0.0 <= bvae <= 1.0
        assert math.isclose(bvae * 50, round(bvae * 50), abs_tol=1e-6)


def test_second_dataset_is_the_one_asked_for(run):
    _, s, *_ = run
    assert s["second_dataset"] == "fashion-mnist-builtin"
    assert s["shapes_factor_sizes"] == [3, 6, 10, 16, 16]


def test_the_tcvae_weighs_only_the_total_correlation(run):
    _, s, _, lesson = run
    assert s["tcvae_tc_beta"] == lesson.TC_BETA > 1
    assert s["tcvae_rate"] > 0 and s["tcvae_distortion"] > 0
    for key in ("tcvae_tc", "shapes_beta1_tc", "shapes_beta16_tc"):
        assert math.isfinite(s[key]), key
    # the TC estimate is bounded by (D - 1) log B for the batch's mixture (D = 10 units)
    assert all(s[k] <= 9 * math.log(lesson.TC_BATCH) for k in ("tcvae_tc", "shapes_beta1_tc"))
    config = (run[0] / "runs" / "shapes_tcvae" / "config.json").read_text()
    assert '"tc_beta": 6.0' in config and '"beta": 1.0' in config
