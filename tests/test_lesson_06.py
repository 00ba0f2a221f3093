"""Lesson 06 (the semi-supervised VAE, M2) in --quick mode: the numbers it claims, and its figures.

The lesson runs once per test session (about 15 s: three small M2 models, one
epoch each, on the built-in Fashion-MNIST subset so that no download is needed);
each test then checks one claim against summary.json.
"""

from __future__ import annotations

import json
import math

import pytest
from lesson_loader import assert_figures, run_quick

FIGURES = {
    "1_labelled_examples.png",
    "2_validation_error.png",
    "3_conditional_samples.png",
    "3_style_transfer.png",
    "3_unconditional_samples.png",
    "4_ablation_test_error.png",
    "4_confusion_matrices.png",
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Run the quick lesson once: (output folder, summary.json, main's return, the module)."""
    out = tmp_path_factory.mktemp("lesson_05")
    return run_quick(out, "06_semi_supervised_vae.py", "--dataset", "fashion-mnist-builtin",
                     "--no-progress")  # fmt: skip


@pytest.fixture(scope="module")
def summary(run):
    return run[1]


def is_multiple(value: float, n: int) -> bool:
    """value is k / n for an integer k: a share of n counted things (summary.json keeps six
    significant digits, so k is recovered to about 1e-3)."""
    return math.isclose(value * n, round(value * n), abs_tol=1e-3)


def test_summary_is_what_main_returns(run):
    _, summary, returned, lesson = run
    assert summary == returned
    assert summary["lesson"] == "06_semi_supervised_vae" and summary["quick"] is True
    assert summary["dataset"] == "fashion-mnist-builtin"
    assert summary["epochs"] == lesson.EPOCHS[1]
    assert summary["ablation_epochs"] == lesson.ABLATION_EPOCHS[1]


def test_every_figure_is_a_png(run):
    assert_figures(run[0], FIGURES)


def test_each_model_keeps_its_checkpoint_and_metrics(run):
    folder, s = run[0], run[1]
    for name, epochs in (("m2_full", s["epochs"]), ("m2_paper", s["epochs"]),
                         ("m2_sampled_y", s["ablation_epochs"]),
                         ("m2_alpha0", s["ablation_epochs"])):  # fmt: skip
        assert (folder / name / "checkpoint.npz").is_file()
        assert (folder / name / "metrics.jsonl").read_text().count("\n") == epochs, name


def test_the_bounds_by_hand_are_the_library_s(summary):
    # float64: the slide's formulas, line by line, give the model's numbers to rounding
    for key in ("by_hand_minus_library_L", "by_hand_minus_library_U", "by_hand_U_two_forms",
                "by_hand_minus_library_J"):  # fmt: skip
        assert 0.0 <= summary[key] < 1e-9, key
    assert summary["by_hand_minus_library_grad"] < 1e-10
    # the numbers are real bounds of random weights: large negative, not zeros
    assert summary["by_hand_L_mean"] < -50 and summary["by_hand_U_mean"] < -50


def test_u_is_below_its_best_value_over_q_y(summary):
    # log Σ_y exp L(x, y) − U(x) = KL(q(y|x) ‖ softmax L) > 0 for an untrained classifier
    assert summary["by_hand_U_gap_min"] > 0
    assert 0 < summary["by_hand_U_entropy_mean"] <= math.log(10) + 1e-12


def test_alpha_follows_the_paper_s_rule(run):
    _, s, _, lesson = run
    # 0.1 N / N_labelled with the full run's N = 50,000 (kept in --quick), in Part 1 and training
    assert s["alpha"] == pytest.approx(0.1 * 50_000 / lesson.N_LABELLED) == 50.0
    assert s["alpha_sampled_y"] == s["alpha"]
    assert s["alpha_alpha0"] == 0.0
    assert s["sum_over_y_sampled_y"] is False and s["sum_over_y_alpha0"] is True


def test_labels_are_class_balanced(run):
    _, s, _, lesson = run
    assert s["n_labelled"] == lesson.N_LABELLED == sum(s["labelled_per_class"])
    assert s["labelled_per_class"] == [lesson.N_LABELLED // 10] * 10
    assert s["n_train"] == lesson.LIMIT_TRAIN[1] - lesson.N_VAL[1]


def test_errors_are_shares_of_the_test_set(run):
    _, s, _, lesson = run
    assert s["n_test"] == lesson.N_TEST[1]
    for key in ("test_error", "test_error_paper", "test_error_sampled_y", "test_error_alpha0",
                "test_error_labels_only"):  # fmt: skip
        assert 0.0 <= s[key] <= 1.0 and is_multiple(s[key], s["n_test"]), key
    for key in ("sample_agreement_full", "sample_agreement_sampled_y", "sample_agreement_alpha0"):
        assert 0.0 <= s[key] <= 1.0 and is_multiple(s[key], lesson.N_AGREEMENT[1]), key
    assert len(s["val_error_per_epoch"]) == len(s["val_error_per_epoch_paper"]) == s["epochs"]
    assert s["val_error_full_at_ablation_epochs"] == s["val_error_per_epoch"][
        min(s["ablation_epochs"], s["epochs"]) - 1]


def test_labels_help_and_alpha_zero_hurts(summary):
    # even one quick epoch with 100 labels is far better than chance (0.9) ...
    assert summary["test_error"] < 0.7
    # ... and without the classification term the classifier does not learn the label names
    assert summary["test_error_alpha0"] > summary["test_error"]
    # the classifier trained on the labelled images alone has learnt them, and beats chance
    assert summary["train_loss_labels_only"] < 0.5
    assert summary["test_error_labels_only"] < 0.7


def test_label_effect_is_a_ratio_of_mean_squared_distances(summary):
    # 0 only if the decoder ignored y entirely; an untrained-ish decoder still reacts a little
    assert 0 < summary["label_effect_full"] < 10
    assert 0 < summary["label_effect_paper"] < 10


def test_the_lesson_s_m2_weighs_the_kl_of_z_and_the_comparison_does_not(run):
    _, s, _, lesson = run
    assert s["beta_z"] == lesson.BETA_Z > 1
    config = json.loads((run[0] / "m2_paper" / "config.json").read_text())
    assert config["model"]["beta"] == 1.0 and config["lr_schedule"] == lesson.LR_SCHEDULE


def test_test_bounds_are_finite_log_likelihood_bounds(summary):
    for key in ("test_labelled_bound", "test_unlabelled_bound"):
        assert -1000 < summary[key] < 0, key
    assert summary["test_classification_loss"] > 0
