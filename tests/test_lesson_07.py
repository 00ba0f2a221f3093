"""Lesson 07 (semi-supervised regression) in --quick mode: the numbers it claims, and its figures.

The lesson runs once per test module (tiny data, few steps, the built-in Fashion-MNIST
subset so that no download is needed); each test then checks one claim against
summary.json, or one of the lesson's functions directly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from lesson_loader import assert_figures, run_quick

FIGURES = {
    "1_slant_examples.png",
    "1_slant_histogram.png",
    "3_error_vs_labels.png",
    "3_learning_curves.png",
    "3_predicted_vs_true.png",
    "4_conditional_generation.png",
    "4_generated_slant.png",
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Run the quick lesson once: (output folder, summary.json, main's return, the module)."""
    out = tmp_path_factory.mktemp("lesson_06")
    return run_quick(out, "07_semi_supervised_regression.py", "--dataset",
                     "fashion-mnist-builtin", "--no-progress")  # fmt: skip


def test_summary_is_what_main_returns_and_quick(run):
    _, summary, returned, lesson = run
    assert summary == returned
    assert summary["quick"] is True and summary["lesson"] == "07_semi_supervised_regression"
    assert summary["dataset"] == "fashion-mnist-builtin"
    assert summary["n_train"] == lesson.pick(lesson.LIMIT_TRAIN, True)
    assert summary["n_labels"] == list(lesson.pick(lesson.N_LABELS, True))


def test_every_figure_is_a_png(run):
    assert_figures(run[0], FIGURES)
    assert (run[0] / "models" / f"ssvae_n{run[1]['n_labels'][0]}.npz").is_file()


def stroke(shear: float, col: float = 14.0, width: float = 1.5, ink: float = 1.0):
    """A straight stroke from row 4 to row 23 whose column moves right by `shear` per row up."""
    r, c = np.mgrid[0:28, 0:28].astype(float)
    centre = col - shear * (r - 13.5)  # going down (r grows) a right-leaning stroke moves left
    img = np.where((np.abs(c - centre) <= width) & (r >= 4) & (r <= 23), ink, 0.0)
    return img.reshape(1, -1)


@pytest.mark.parametrize("shear", [-0.5, -0.2, 0.0, 0.3, 0.6])
def test_slant_of_a_sheared_stroke_is_its_angle(run, shear):
    slant = run[3].slant_degrees
    expected = math.degrees(math.atan(shear))
    assert slant(stroke(shear))[0] == pytest.approx(expected, abs=1.0)
    # mirrored, it leans the other way; moved or with fainter ink, it leans the same
    assert slant(stroke(shear).reshape(28, 28)[:, ::-1].reshape(1, -1))[0] == pytest.approx(
        -slant(stroke(shear))[0], abs=1e-9)
    assert slant(stroke(shear, col=10.0))[0] == pytest.approx(slant(stroke(shear))[0], abs=0.5)
    assert slant(stroke(shear, ink=0.3))[0] == pytest.approx(slant(stroke(shear))[0], abs=1e-9)


def test_the_objective_by_hand_is_the_library_s(run):
    s = run[1]
    for key in ("L", "U", "loss"):
        assert s[f"by_hand_minus_library_{key}"] < 1e-9, key  # float64: rounding only
    assert s["by_hand_U_mean"] < 0 and s["by_hand_L_mean"] < 0  # bounds on log-densities of x
    # the unlabelled bound reaches the regressor's mean only through the reparameterized y
    assert s["grad_mu_y_reparameterized"] > 1e-3
    assert s["grad_mu_y_detached"] == 0.0


def test_errors_are_consistent_and_the_baseline_learns_something(run):
    s, lesson = run[1], run[3]
    var = s["slant_test_std_degrees"] ** 2
    names = ["baseline"] + [lesson.tag(b) for b in lesson.pick(lesson.BETAS_Z, True)]
    assert s["repeats"] == lesson.pick(lesson.REPEATS, True)
    for n in s["n_labels"]:
        k = f"n{n}"
        for name in names:
            rmse, r2 = s[f"{k}_{name}_rmse_each"], s[f"{k}_{name}_r2_each"]
            assert len(rmse) == len(r2) == s["repeats"]
            for e, q in zip(rmse, r2):  # R² = 1 − MSE / Var(slant), per labelled set
                assert e > 0 and q == pytest.approx(1 - e**2 / var, abs=1e-4)
            assert s[f"{k}_{name}_rmse"] == pytest.approx(np.mean(rmse), abs=1e-3)
        for e, mean_e, fit in zip(s[f"{k}_baseline_rmse_each"], s[f"{k}_mean_predictor_rmse_each"],
                                  s[f"{k}_baseline_train_rmse_each"]):  # fmt: skip
            # predicting a constant can do no better than the spread of the test slants
            assert mean_e >= s["slant_test_std_degrees"] - 1e-4
            assert e < mean_e  # the few labels teach the baseline something ...
            assert fit < e  # ... and it fits them better than it generalizes
        assert s[f"{k}_label_std"] > 0


def test_learning_curves_are_recorded_for_every_model(run):
    s, lesson = run[1], run[3]
    steps = s["curve_steps"]
    every, total = lesson.pick(lesson.CURVE_EVERY, True), lesson.pick(lesson.STEPS, True)
    assert steps == list(range(every, total + 1, every))
    assert len(s["curve_baseline_rmse"]) == len(steps) and "curve_baseline_slope" not in s
    for b in lesson.pick(lesson.BETAS_Z, True):
        assert len(s[f"curve_{lesson.tag(b)}_rmse"]) == len(s[f"curve_{lesson.tag(b)}_slope"])
        assert len(s[f"curve_{lesson.tag(b)}_slope"]) == len(steps)


def test_the_checkpoint_predicts_what_the_trained_model_did(run):
    assert run[1]["checkpoint_max_abs_diff"] == 0.0


def test_conditional_generation_sweeps_the_asked_slant(run):
    s, lesson = run[1], run[3]
    asked = np.array(s["generation_asked_degrees"])
    main = f"n{s['n_labels'][0]}"
    assert len(asked) == len(lesson.SWEEP) and np.all(np.diff(asked) > 0)
    # the sweep is centred on the labelled mean, in steps of the labelled standard deviation
    assert asked[len(asked) // 2] == pytest.approx(s[f"{main}_label_mean"], abs=0.01)
    assert asked[-1] - asked[0] == pytest.approx(5 * s[f"{main}_label_std"], abs=0.05)
    measured = np.array(s["generation_measured_mean_degrees"])
    assert measured.shape == asked.shape and np.all(np.isfinite(measured))
    assert s["generation_beta_z"] == lesson.pick(lesson.BETAS_Z, True)[-1]
    # even after a few steps every decoder leans its output the way the labels told it
    for key in ["generation"] + [f"generation_{lesson.tag(b)}"
                                 for b in lesson.pick(lesson.BETAS_Z, True)[:-1]]:  # fmt: skip
        assert 0 < s[f"{key}_correlation"] <= 1.0 and s[f"{key}_slope"] > 0
