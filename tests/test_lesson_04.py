"""Lesson 04 (the β-VAE) run as a script in quick mode: the numbers it claims, its figures.

The lesson runs once per test session (two β values, tiny data, the built-in Fashion-MNIST
subset as the second data set so that no download is needed); each test then checks one
claim against summary.json. tests/test_notebooks.py runs it as a notebook.
"""

from __future__ import annotations

import json
import math

import pytest
from lesson_loader import (
    assert_figures,
    assert_notebook_form,
    assert_quick_run,
    run_script,
)

FILENAME = "04_beta_vae.py"
FIGURES = {
    "1_shapes_factors.png",
    "2_rate_distortion_shapes.png",
    "2_rate_distortion_mnist.png",
    "2_active_units.png",
    "3_traversals_beta1.png",
    "3_traversals_beta16.png",
    "3_mutual_information_matrices.png",
    "4_disentanglement_vs_beta.png",
    "5_tcvae.png",
    "6_traversals_beta20_tc40.png",
}
VERDICTS = (
    "shapes_rate_falls_distortion_rises",
    "shapes_beta1_best_elbo",
    "shapes_units_switch_off",
    "mnist_rate_falls_distortion_rises",
    "mnist_beta1_best_elbo",
    "mnist_units_switch_off",
    "mig_peaks_at_a_large_beta",
    "position_and_scale_get_units",
    "shape_and_orientation_stay_entangled",
    "beta_vae_metric_above_chance",
    "tc_falls_with_beta",
    "tcvae_lowers_tc",
    "tcvae_mig_below_the_best_beta_vae",
    "combined_mig_above_every_beta_vae",
    "combined_position_and_scale_get_units",
)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """python lessons/04_beta_vae.py --quick --out tmp --dataset fashion-mnist-builtin, once:
    (output folder, summary.json, the lesson's namespace, what it printed)."""
    return run_script(tmp_path_factory.mktemp("lesson_04"), FILENAME,
                      "--dataset", "fashion-mnist-builtin", "--no-progress")  # fmt: skip


@pytest.fixture(scope="module")
def summary(run):
    return run[1]


def test_a_quick_run_records_the_lesson_and_judges_nothing(run):
    assert_quick_run(run, "04_beta_vae", "fashion-mnist-builtin", VERDICTS)
    summary = run[1]
    assert summary["shapes_factor_sizes"] == [3, 6, 10, 16, 16]


def test_the_command_line_set_the_first_cells_settings(run):
    namespace = run[2]
    assert namespace["QUICK"] is True and namespace["PROGRESS"] is False
    assert namespace["DATASET"] == "fashion-mnist-builtin"
    assert namespace["OUT"] == str(run[0].parent)
    assert namespace["TC_BETA"] == 6.0 and namespace["SEED"] == 0  # the first cell's defaults
    # the full sweep is five β on shapes; quick mode trains the two ends
    assert namespace["BETAS"][0] == (1, 2, 4, 8, 16)
    assert list(namespace["shapes"]) == [1, 16] and list(namespace["second"]) == [1, 16]


def test_parts_print_in_reading_order(run):
    printed = run[3]
    starts = [printed.index(f"Part {i}:") for i in range(1, 7)]
    assert starts == sorted(starts)
    assert printed.index("What the numbers say") > starts[-1]


def test_every_figure_exists_and_is_a_png(run):
    assert_figures(run[0], FIGURES)


@pytest.mark.parametrize("tag", ["shapes", "mnist"])
def test_larger_beta_pays_less_rate_and_more_distortion(summary, tag):
    s = summary
    # the β = 16 model weighs the KL 16 times more: a much cheaper code ...
    assert s[f"{tag}_beta16_rate"] < 0.6 * s[f"{tag}_beta1_rate"]
    # ... bought with worse reconstructions, and (β = 1 optimizes it) a worse -ELBO
    assert s[f"{tag}_beta16_distortion"] > s[f"{tag}_beta1_distortion"]
    assert s[f"{tag}_beta16_neg_elbo"] >= s[f"{tag}_beta1_neg_elbo"] - 0.5
    for beta in (1, 16):
        assert s[f"{tag}_beta{beta}_rate"] > 0
        assert s[f"{tag}_beta{beta}_neg_elbo"] == pytest.approx(
            s[f"{tag}_beta{beta}_rate"] + s[f"{tag}_beta{beta}_distortion"], abs=1e-2
        )
        assert 0 <= s[f"{tag}_beta{beta}_active_units"] <= 10


def test_disentanglement_scores_are_in_range(summary):
    s = summary
    for key in ("shapes_beta1", "shapes_beta16", "tcvae", "combined"):
        assert 0.0 <= s[f"{key}_mig"] <= 1.0
        gaps = s[f"{key}_mig_per_factor"]
        assert len(gaps) == 5 and all(0.0 <= g <= 1.0 for g in gaps)
        assert s[f"{key}_mig"] == pytest.approx(sum(gaps) / 5, abs=1e-3)
        # the β-VAE metric is an accuracy on 50 balanced test points: a multiple of 1/50
        bvae = s[f"{key}_beta_vae_metric"]
        assert 0.0 <= bvae <= 1.0
        assert math.isclose(bvae * 50, round(bvae * 50), abs_tol=1e-6)


def test_mutual_information_labels_the_traversals(run):
    namespace, printed = run[2], run[3]
    entropies = namespace["entropies"]  # H(v_k) of the five factors, nats
    assert entropies.shape == (5,) and all(entropies > 0)
    for beta in (1, 16):
        mi = namespace["mi"][beta]  # (latent, K) I(z_u; v_k), at most H(v_k)
        assert mi.shape == (10, 5) and (mi >= 0).all() and (mi <= entropies + 1e-9).all()
        order, labels = namespace["unit_labels"](namespace["shapes"][beta]["activity"], mi)
        assert sorted(order) == list(range(10)) and len(labels) == 10
        assert f"β = {beta}, units by activity: " + "; ".join(labels) in printed


def test_the_tcvae_weighs_only_the_total_correlation(run):
    folder, s, namespace, _ = run
    assert s["tcvae_tc_beta"] == namespace["TC_BETA"] > 1
    assert s["tcvae_rate"] > 0 and s["tcvae_distortion"] > 0
    for key in ("tcvae_tc", "shapes_beta1_tc", "shapes_beta16_tc"):
        assert math.isfinite(s[key]), key
    # the TC estimate is bounded by (D - 1) log B for the batch's mixture (D = 10 units)
    bound = 9 * math.log(namespace["TC_BATCH"])
    assert all(s[k] <= bound for k in ("tcvae_tc", "shapes_beta1_tc"))
    config = json.loads((folder / "runs" / "shapes_tcvae" / "config.json").read_text())
    assert config["model"]["tc_beta"] == 6.0 and config["model"]["beta"] == 1.0


def test_beta_and_tc_together_train_on_larger_batches(run):
    """Part 6: β = 20 and β_TC = 40 in one model, TC on batches of 512, the learning rate on a cosine."""
    folder, s, namespace, printed = run
    config = json.loads((folder / "runs" / "shapes_beta20_tc40" / "config.json").read_text())
    assert config["model"]["beta"] == 20.0 and config["model"]["tc_beta"] == 40.0
    assert config["lr_schedule"] == "cosine"
    assert config["batch_size"] == 512 and config["batch_size"] != namespace["BATCH_SIZE"]
    assert s["combined_rate"] > 0 and s["combined_distortion"] > 0
    assert 0 <= s["combined_active_units"] <= 10 and math.isfinite(s["combined_tc"])
    assert "β = 20, β_TC = 40, units by activity: " in printed


def test_lesson_reads_as_a_notebook():
    assert_notebook_form(FILENAME, {"DATASET", "PROGRESS", "TC_BETA"}, 6, cited=(
        'Understanding Deep Learning, ch. 17, "VAE applications [4]"',
        "PGM Lecture 30",
        "docs/ERRATA.md#e10-",
    ))  # fmt: skip
