"""Lesson 06 (the semi-supervised VAE, M2) run as a script in quick mode: its numbers and figures.

The lesson runs once per test session (four small M2 models, one epoch each, on the built-in
Fashion-MNIST subset so that no download is needed); each test then checks one claim against
summary.json. tests/test_notebooks.py runs it as a notebook.
"""

from __future__ import annotations

import json
import math

import pytest
from lesson_loader import (
    LESSONS,
    assert_figures,
    assert_notebook_form,
    assert_quick_run,
    run_script,
)

FILENAME = "06_semi_supervised_vae.py"
FIGURES = {
    "2_labelled_examples.png",
    "3_validation_error.png",
    "4_conditional_samples.png",
    "4_style_transfer.png",
    "4_unconditional_samples.png",
    "5_test_error.png",
    "5_confusion_matrices.png",
}
VERDICTS = (
    "by_hand_is_the_library",
    "u_below_its_best",
    "unlabelled_images_help",
    "beta_z_beats_paper_j_at_this_budget",
    "beta_z_decoder_uses_y",
    "samples_have_their_class",
    "sampled_y_worse_than_labels_only",
    "alpha0_behind_but_far_from_chance",
)
MODELS = ("m2_full", "m2_paper", "m2_sampled_y", "m2_alpha0")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """python lessons/06_semi_supervised_vae.py --quick --out tmp --dataset
    fashion-mnist-builtin --no-progress, once: (folder, summary.json, namespace, printed)."""
    return run_script(tmp_path_factory.mktemp("lesson_06"), FILENAME,
                      "--dataset", "fashion-mnist-builtin", "--no-progress")  # fmt: skip


@pytest.fixture(scope="module")
def summary(run):
    return run[1]


def is_multiple(value: float, n: int) -> bool:
    """value is k / n for an integer k: a share of n counted things (summary.json keeps six
    significant digits, so k is recovered to about 1e-3)."""
    return math.isclose(value * n, round(value * n), abs_tol=1e-3)


def test_a_quick_run_records_the_lesson_and_judges_nothing(run):
    assert_quick_run(run, "06_semi_supervised_vae", "fashion-mnist-builtin", VERDICTS)
    summary = run[1]
    namespace = run[2]
    assert summary["epochs"] == namespace["epochs"] == 1  # EPOCHS = None: 1 in quick mode
    assert summary["ablation_epochs"] == namespace["ablation_epochs"] == 1
    # the claims that hold at any size: the bounds by hand, and U below its best value
    assert summary["by_hand_is_the_library"] is True and summary["u_below_its_best"] is True


def test_the_command_line_set_the_first_cells_settings(run):
    namespace = run[2]
    assert namespace["QUICK"] is True and namespace["PROGRESS"] is False
    assert namespace["OUT"] == str(run[0].parent)
    assert namespace["DATASET"] == "fashion-mnist-builtin"
    assert namespace["EPOCHS"] is None and namespace["SEED"] == 0  # the first cell's defaults


def test_every_figure_is_a_png(run):
    assert_figures(run[0], FIGURES)


def test_each_model_keeps_its_checkpoint_and_metrics(run):
    folder, s = run[0], run[1]
    for name in MODELS:
        epochs = s["epochs"] if name in ("m2_full", "m2_paper") else s["ablation_epochs"]
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
    _, s, namespace, _ = run
    # 0.1 N / N_labelled with the full run's N = 50,000 (kept in quick mode), in Part 1 and training
    assert s["alpha"] == pytest.approx(0.1 * 50_000 / namespace["N_LABELLED"]) == 50.0
    assert s["alpha_sampled_y"] == s["alpha"]
    assert s["alpha_alpha0"] == 0.0
    assert s["sum_over_y_sampled_y"] is False and s["sum_over_y_alpha0"] is True


def test_labels_are_class_balanced(run):
    _, s, namespace, _ = run
    assert s["n_labelled"] == namespace["N_LABELLED"] == sum(s["labelled_per_class"])
    assert s["labelled_per_class"] == [namespace["N_LABELLED"] // 10] * 10
    assert s["n_train"] == namespace["LIMIT_TRAIN"] - namespace["N_VAL"]


def test_errors_are_shares_of_the_test_set(run):
    _, s, namespace, _ = run
    assert s["n_test"] == namespace["N_TEST"]
    for key in ("test_error", "test_error_paper", "test_error_sampled_y", "test_error_alpha0",
                "test_error_labels_only"):  # fmt: skip
        assert 0.0 <= s[key] <= 1.0 and is_multiple(s[key], s["n_test"]), key
    for key in ("sample_agreement_full", "sample_agreement_sampled_y", "sample_agreement_alpha0"):
        assert 0.0 <= s[key] <= 1.0 and is_multiple(s[key], namespace["N_AGREEMENT"]), key
    assert len(s["val_error_per_epoch"]) == len(s["val_error_per_epoch_paper"]) == s["epochs"]
    assert (
        s["val_error_full_at_ablation_epochs"]
        == s["val_error_per_epoch"][min(s["ablation_epochs"], s["epochs"]) - 1]
    )
    assert s["val_error_alpha0"] == pytest.approx(
        json.loads((run[0] / "m2_alpha0" / "metrics.jsonl").read_text().splitlines()[-1])[
            "val_error"], rel=1e-5)  # fmt: skip


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
    _, s, namespace, _ = run
    assert s["beta_z"] == namespace["BETA_Z"] > 1
    config = json.loads((run[0] / "m2_paper" / "config.json").read_text())
    assert config["model"]["beta"] == 1.0 and config["lr_schedule"] == "cosine"
    full = json.loads((run[0] / "m2_full" / "config.json").read_text())
    assert full["model"]["beta"] == namespace["BETA_Z"]


def test_test_bounds_are_finite_log_likelihood_bounds(summary):
    for key in ("test_labelled_bound", "test_unlabelled_bound"):
        assert -1000 < summary[key] < 0, key
    assert summary["test_classification_loss"] > 0


def test_lesson_reads_as_a_notebook():
    assert_notebook_form(FILENAME, {"DATASET", "PROGRESS", "EPOCHS", "ABLATION_EPOCHS"}, 5, cited=(
        "VAE Extensions slides",
        "Kingma et al. 2014",
        "../docs/ERRATA.md#e21-plus-kl-in-the-labelled-bound",
        "../docs/ERRATA.md#e23-the-unlabelled-bound-is-on-log-p-of-x",
    ))  # fmt: skip


def test_the_claim_about_the_paper_s_j_sits_in_one_marked_cell():
    # what the paper's J does is stated for this lesson's budget, in Part 3's opening cell only
    text = (LESSONS / FILENAME).read_text(encoding="utf-8")
    cells = text.split("# %%")
    part3 = [c for c in cells if c.startswith(" [markdown]\n# ## Part 3:")]
    assert len(part3) == 1 and "THIS lesson's budget" in part3[0]
    assert "learns slowly" not in text
