"""Lesson 07 (semi-supervised regression) run as a script in quick mode: its claims, its figures.

The lesson runs once per test module (tiny data, a few steps, the built-in Fashion-MNIST
subset so that no download is needed); each test then checks one claim against
summary.json, the lesson's namespace, or the training runs it wrote.
tests/test_notebooks.py runs it as a notebook.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from lesson_loader import (
    assert_figures,
    assert_notebook_form,
    assert_quick_run,
    run_script,
)

from minivae import backend as B
from minivae.data import slant_degrees
from minivae.models import build_model

FILENAME = "07_semi_supervised_regression.py"
FIGURES = {
    "1_slant_examples.png",
    "1_slant_histogram.png",
    "3_error_vs_labels.png",
    "3_learning_curves.png",
    "3_predicted_vs_true.png",
    "4_conditional_generation.png",
    "4_generated_slant.png",
}
VERDICTS = (
    "objective_by_hand_is_the_library_s",
    "reparameterization_carries_the_gradient",
    "beta_z3_beats_the_baseline_with_few_labels",
    "beta_z3_beats_j_as_written",
    "j_as_written_does_not_reliably_help",
    "the_baseline_wins_with_many_labels",
    "beta_z3_decoder_follows_y_more",
    "generation_follows_the_asked_slant",
    "checkpoint_reproduces_the_model",
)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """python lessons/07_semi_supervised_regression.py --quick --out tmp --dataset
    fashion-mnist-builtin --no-progress, once: (output folder, summary.json, the lesson's
    namespace, what it printed)."""
    return run_script(tmp_path_factory.mktemp("lesson_07"), FILENAME, "--dataset",
                      "fashion-mnist-builtin", "--no-progress")  # fmt: skip


@pytest.fixture(scope="module")
def summary(run):
    return run[1]


@pytest.fixture(scope="module")
def ns(run):
    return run[2]


def names(ns) -> list:
    return ["baseline"] + [f"ssvae_betaz{b:g}" for b in ns["BETAS_Z"]]


def test_a_quick_run_records_the_lesson_and_judges_nothing(run):
    assert_quick_run(run, "07_semi_supervised_regression", "fashion-mnist-builtin", VERDICTS)
    summary = run[1]
    ns = run[2]
    assert summary["n_train"] == ns["LIMIT_TRAIN"] == len(ns["x_train"])
    assert summary["n_labels"] == list(ns["N_LABELS"]) and summary["repeats"] == ns["repeats"]


def test_the_command_line_set_the_first_cells_settings(run, ns):
    assert ns["QUICK"] is True and ns["PROGRESS"] is False  # --quick, --no-progress
    assert ns["OUT"] == str(run[0].parent) and ns["DATASET"] == "fashion-mnist-builtin"
    assert ns["STEPS"] == 1800 and ns["REPEATS"] == 2 and ns["SEED"] == 0  # the first cell's
    # quick sizes: whole epochs of the loop, as close to 60 steps as they come
    assert ns["steps"] == ns["epochs"] * ns["per_epoch"] and abs(ns["steps"] - 60) < ns["per_epoch"]
    assert ns["repeats"] == 1


def test_every_figure_exists_and_is_a_png(run):
    assert_figures(run[0], FIGURES)


def test_the_training_loop_wrote_every_run(run, ns):
    """Each semi-supervised model is a run of minivae.train.train: config, metrics, checkpoint."""
    for n in ns["N_LABELS"]:
        for beta_z in ns["BETAS_Z"]:
            folder = run[0] / "runs" / f"n{n}_set0_betaz{beta_z:g}"
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            assert config["model"]["kind"] == "ssvae-continuous"
            assert config["model"]["beta"] == beta_z and config["n_labelled"] == n
            assert config["epochs"] == ns["epochs"] and config["binarize"] == "none"
            # the loop standardized y by the labelled images' slant
            assert config["model"]["label_std"] > 0
            rows = (folder / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
            assert len(rows) == ns["epochs"]
            assert (folder / "checkpoint.npz").is_file()
    # the learning curves of the main N joined the loop's metrics rows (its on_epoch hook)
    main = run[0] / "runs" / f"n{ns['N_LABELS'][0]}_set0_betaz{ns['BETAS_Z'][0]:g}"
    last = json.loads((main / "metrics.jsonl").read_text(encoding="utf-8").splitlines()[-1])
    assert {"curve_rmse", "curve_slope"} <= set(last)


def stroke(shear: float, col: float = 14.0, width: float = 1.5, ink: float = 1.0):
    """A straight stroke from row 4 to row 23 whose column moves right by `shear` per row up."""
    r, c = np.mgrid[0:28, 0:28].astype(float)
    centre = col - shear * (r - 13.5)  # going down (r grows) a right-leaning stroke moves left
    img = np.where((np.abs(c - centre) <= width) & (r >= 4) & (r <= 23), ink, 0.0)
    return img.reshape(1, -1)


@pytest.mark.parametrize("shear", [-0.5, -0.2, 0.0, 0.3, 0.6])
def test_slant_of_a_sheared_stroke_is_its_angle(shear):
    # Part 1's formula, atan(−μ_rc / μ_rr), on strokes of known slant
    expected = math.degrees(math.atan(shear))
    assert slant_degrees(stroke(shear))[0] == pytest.approx(expected, abs=1.0)
    # mirrored, it leans the other way; moved or with fainter ink, it leans the same
    mirrored = stroke(shear).reshape(28, 28)[:, ::-1].reshape(1, -1)
    assert slant_degrees(mirrored)[0] == pytest.approx(-slant_degrees(stroke(shear))[0], abs=1e-9)
    assert slant_degrees(stroke(shear, col=10.0))[0] == pytest.approx(
        slant_degrees(stroke(shear))[0], abs=0.5
    )
    assert slant_degrees(stroke(shear, ink=0.3))[0] == pytest.approx(
        slant_degrees(stroke(shear))[0], abs=1e-9
    )


def test_the_objective_by_hand_is_the_library_s(summary):
    for key in ("L", "U", "loss"):
        assert summary[f"by_hand_minus_library_{key}"] < 1e-9, key  # float64: rounding only
    assert summary["by_hand_U_mean"] < 0 and summary["by_hand_L_mean"] < 0  # bounds on log p
    # the unlabelled bound reaches the regressor's mean only through the reparameterized y
    assert summary["grad_mu_y_reparameterized"] > 1e-3
    assert summary["grad_mu_y_detached"] == 0.0
    assert summary["objective_by_hand_is_the_library_s"] is True
    assert summary["reparameterization_carries_the_gradient"] is True


def test_errors_are_consistent_and_the_baseline_learns_something(summary, ns):
    var = summary["slant_test_std_degrees"] ** 2
    for n in summary["n_labels"]:
        k = f"n{n}"
        for name in names(ns):
            rmse, r2 = summary[f"{k}_{name}_rmse_each"], summary[f"{k}_{name}_r2_each"]
            assert len(rmse) == len(r2) == summary["repeats"]
            for e, q in zip(rmse, r2):  # R² = 1 − MSE / Var(slant), per labelled set
                assert e > 0 and q == pytest.approx(1 - e**2 / var, abs=1e-4)
            assert summary[f"{k}_{name}_rmse"] == pytest.approx(np.mean(rmse), abs=1e-3)
        for e, mean_e, fit in zip(summary[f"{k}_baseline_rmse_each"],
                                  summary[f"{k}_mean_predictor_rmse_each"],
                                  summary[f"{k}_baseline_train_rmse_each"]):  # fmt: skip
            # predicting a constant can do no better than the spread of the test slants
            assert mean_e >= summary["slant_test_std_degrees"] - 1e-4
            assert e < mean_e  # the few labels teach the baseline something ...
            assert fit < e  # ... and it fits them better than it generalizes
        assert summary[f"{k}_label_std"] > 0


def test_learning_curves_start_together_and_follow_every_epoch(summary, ns):
    per_epoch, epochs = ns["per_epoch"], ns["epochs"]
    assert summary["curve_steps"] == [e * per_epoch for e in range(epochs + 1)]
    first = {summary[f"curve_{name}_rmse"][0] for name in names(ns)}
    assert len(first) == 1  # step 0: every model starts from the baseline's initial weights
    assert "curve_baseline_slope" not in summary  # the baseline's decoder is never trained
    for name in names(ns)[1:]:
        assert len(summary[f"curve_{name}_rmse"]) == len(summary[f"curve_{name}_slope"])
        assert len(summary[f"curve_{name}_slope"]) == epochs + 1
    # the last point of each curve is the model's error on the first N_CURVE test images
    for name in names(ns):
        model = ns["kept"][(ns["N_LABELS"][0], 0, name)]
        rmse = ns["scores"](model, ns["x_curve"], ns["s_curve"])[0]
        assert summary[f"curve_{name}_rmse"][-1] == pytest.approx(rmse, abs=1e-3)


def test_the_baseline_trains_only_the_regressor_on_the_same_labels(ns):
    n = ns["N_LABELS"][0]
    config = ns["config_for"](n, 0)
    B.manual_seed(config.seed)  # what train() and the baseline do before they build the model
    start = build_model(config.model)
    base = ns["kept"][(n, 0, "baseline")]
    for (key, a), (_, b) in zip(base.named_parameters(), start.named_parameters()):
        moved = not np.array_equal(B.to_numpy(a.data), B.to_numpy(b.data))
        assert moved == key.startswith("regressor"), key  # the rest keeps its initial weights
    # the loop standardized y by the slant of the same labelled images for every model
    for name in names(ns)[1:]:
        model = ns["kept"][(n, 0, name)]
        assert (model.label_mean, model.label_std) == (base.label_mean, base.label_std)


def test_the_checkpoint_predicts_what_the_trained_model_did(summary):
    assert summary["checkpoint_max_abs_diff"] == 0.0
    assert summary["checkpoint_reproduces_the_model"] is True


def test_conditional_generation_sweeps_the_asked_slant(summary, ns):
    asked = np.array(summary["generation_asked_degrees"])
    main = f"n{summary['n_labels'][0]}"
    assert len(asked) == len(ns["SWEEP"]) and np.all(np.diff(asked) > 0)
    # the sweep is centred on the labelled mean, in steps of the labelled standard deviation
    assert asked[len(asked) // 2] == pytest.approx(summary[f"{main}_label_mean"], abs=0.01)
    assert asked[-1] - asked[0] == pytest.approx(5 * summary[f"{main}_label_std"], abs=0.05)
    measured = np.array(summary["generation_measured_mean_degrees"])
    assert measured.shape == asked.shape and np.all(np.isfinite(measured))
    assert summary["generation_beta_z"] == ns["BETAS_Z"][-1]
    # even after a few steps every decoder leans its output the way the labels told it
    for b in ns["BETAS_Z"]:
        key = f"generation_ssvae_betaz{b:g}"
        assert 0 < summary[f"{key}_correlation"] <= 1.0 and summary[f"{key}_slope"] > 0


def test_lesson_reads_as_a_notebook():
    assert_notebook_form(FILENAME, {"DATASET", "PROGRESS", "STEPS", "REPEATS"}, 4, cited=(
        "minivae.train.train",
        '"ssvae-continuous"',  # the library's loop
        "VAE Extensions slides",
        "PGM Lecture 30",
        "../docs/ERRATA.md#e21-plus-kl-in-the-labelled-bound",
        "../docs/ERRATA.md#e23-the-unlabelled-bound-is-on-log-p-of-x",
    ))  # fmt: skip
