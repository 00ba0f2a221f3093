"""The gradient checker itself: it passes right backward passes and catches planted wrong ones.

A checker that passes everything is worse than none, so each planted bug below
(a backward off by a factor 1.001, a sign error, one wrong element) must be caught
in both the full-Jacobian mode and the random-projection mode, and the report must
say where: which input, which element, the analytic and numeric values, and the
relative error.
"""

from __future__ import annotations

import numpy as np
import pytest

import minivae as mv
from minivae import ops
from minivae.gradcheck import assert_gradcheck, gradcheck
from minivae.ops.binary import Mul, Sub
from minivae.ops.elementwise import Exp
from minivae.tensor import Function

MODES = ["full", "projection"]


class OffByFactorMul(Mul):
    """Mul whose gradient for its first input is 1.001 times too large."""

    def backward(self, grad_out):
        ga, gb = super().backward(grad_out)
        return (None if ga is None else ga * 1.001), gb


class SignErrorSub(Sub):
    """Sub whose gradient for its second input has the wrong sign."""

    def backward(self, grad_out):
        ga, gb = super().backward(grad_out)
        return ga, (None if gb is None else -gb)


class OneWrongElementExp(Exp):
    """Exp whose gradient is wrong at element (1, 2) only, by a factor 1.001."""

    def backward(self, grad_out):
        (g,) = super().backward(grad_out)
        g = g.copy()
        g[1, 2] *= 1.001
        return (g,)


@pytest.fixture
def xy():
    rng = np.random.default_rng(7)
    return [rng.uniform(0.5, 2.0, (3, 4)), rng.uniform(0.5, 2.0, (3, 4))]


def test_right_backward_passes_in_both_modes(xy):
    for mode in MODES:
        report = gradcheck(lambda a, b: ops.mul(a, b), xy, mode=mode)
        assert report.ok and report.mode == mode, str(report)
        assert report.failures == []
        assert report.worst is not None and report.worst.rel_error < 1e-6
        assert "passed" in str(report)


@pytest.mark.parametrize("mode", MODES)
def test_factor_1_001_is_caught_and_reported(xy, mode):
    report = gradcheck(lambda a, b: OffByFactorMul.apply(a, b), xy, mode=mode, names=["a", "b"])
    assert not report.ok
    assert report.mode == mode
    assert {f.input for f in report.failures} == {0}, "only input 0 (a) is wrong"
    worst = report.worst
    assert worst.input == 0 and worst.name == "a"
    assert worst.analytic == pytest.approx(1.001 * worst.numeric, rel=1e-6)
    assert worst.rel_error == pytest.approx(0.001 / 1.001, rel=1e-3)
    text = str(report)
    assert "FAILED" in text and "input 0 (a)" in text
    assert f"analytic {worst.analytic:.10g}" in text and f"numeric {worst.numeric:.10g}" in text
    assert "relative error" in text
    if mode == "full":
        assert len(worst.index) == 2 and all(0 <= i < n for i, n in zip(worst.index, (3, 4)))
        assert f"element {worst.index}" in text
        # mul's Jacobian is diagonal: the failures are exactly the 12 diagonal entries
        assert len(report.failures) == 12
        assert all(f.index == f.output_index for f in report.failures)


@pytest.mark.parametrize("mode", MODES)
def test_sign_error_is_caught_naming_the_second_input(xy, mode):
    report = gradcheck(lambda a, b: SignErrorSub.apply(a, b), xy, mode=mode)
    assert not report.ok
    assert {f.input for f in report.failures} == {1}
    assert report.worst.analytic == pytest.approx(-report.worst.numeric, rel=1e-6)
    assert report.worst.rel_error == pytest.approx(2.0, rel=1e-6)
    assert "input 1" in str(report)


@pytest.mark.parametrize("mode", MODES)
def test_one_wrong_element_is_caught(mode):
    x = np.random.default_rng(3).uniform(-1.0, 1.0, (3, 4))
    report = gradcheck(lambda t: OneWrongElementExp.apply(t), [x], mode=mode)
    assert not report.ok
    if mode == "full":
        assert [(f.index, f.output_index) for f in report.failures] == [((1, 2), (1, 2))]
        assert "element (1, 2)" in str(report)
        assert report.worst.analytic == pytest.approx(1.001 * np.exp(x[1, 2]), rel=1e-9)
        assert report.worst.numeric == pytest.approx(np.exp(x[1, 2]), rel=1e-8)


def test_large_inputs_use_projections_and_still_catch_a_planted_bug():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.5, 2.0, (30, 20)), rng.uniform(0.5, 2.0, (30, 20))
    good = gradcheck(lambda x, y: ops.mul(x, y), [a, b])
    assert good.mode == "projection" and good.ok, str(good)
    bad = gradcheck(lambda x, y: OffByFactorMul.apply(x, y), [a, b])
    assert bad.mode == "projection" and not bad.ok
    assert {f.input for f in bad.failures} == {0}


def test_float32_inputs_are_checked_in_float64_and_left_untouched():
    x = mv.Tensor(np.linspace(0.5, 2.0, 6, dtype=np.float32).reshape(2, 3), requires_grad=True)
    before = x.numpy().copy()
    report = gradcheck(lambda t: ops.log(t), [x])
    assert report.ok, str(report)
    assert x.dtype == np.float32 and x.grad is None
    np.testing.assert_array_equal(x.numpy(), before)


def test_integer_inputs_are_passed_through_unchecked():
    rng = np.random.default_rng(1)
    logits, labels = rng.standard_normal((4, 3)), np.array([0, 2, 2, 1])
    report = gradcheck(ops.cross_entropy, [logits, labels])
    assert report.ok, str(report)
    assert report.checked == 12 * 4  # 12 logits x 4 outputs; the labels are not perturbed


def test_assert_gradcheck_raises_with_the_report():
    x = np.random.default_rng(2).uniform(-1, 1, (2, 3))
    assert assert_gradcheck(ops.exp, [x]).ok
    with pytest.raises(AssertionError, match=r"FAILED .*\n  worst: input 0, element"):
        assert_gradcheck(lambda t: OneWrongElementExp.apply(t), [x])


def test_bad_arguments_are_refused():
    x = np.ones((2, 2))
    with pytest.raises(ValueError, match="mode must be"):
        gradcheck(ops.exp, [x], mode="sideways")
    with pytest.raises(ValueError, match="no floating-point input"):
        gradcheck(lambda i: ops.getitem(mv.Tensor(np.ones(3)), i.data), [np.array([0, 1])])
    with pytest.raises(TypeError, match="must return a Tensor"):
        gradcheck(lambda t: t.data * 2.0, [x])


def test_an_output_that_ignores_its_input_gets_zero_gradients():
    const = mv.Tensor(np.arange(3.0))
    report = gradcheck(lambda t: const * 2.0, [np.ones(2)], mode="full")
    assert report.ok and report.checked == 6
    assert report.worst.analytic == 0.0 and report.worst.numeric == 0.0


class _SquareWithNaNGradient(Function):
    """y = x^2 with a backward that returns NaN: a learner's broken derivative."""

    def forward(self, x):
        return x * x

    def backward(self, grad_out):
        return (grad_out * np.nan,)


@pytest.mark.parametrize("mode", ["full", "projection"])
def test_a_nan_gradient_or_a_nan_forward_fails_and_says_which_side(mode):
    """NaN compares False with everything: without its own test it would pass as 'close'."""
    x = np.array([1.0, 2.0])
    report = gradcheck(lambda t: _SquareWithNaNGradient.apply(t), [x], mode=mode)
    assert not report.ok and "analytic not finite" in str(report) and "the backward" in str(report)
    with np.errstate(invalid="ignore"):
        report = gradcheck(lambda t: ops.log(t - 5.0), [x], mode=mode)  # log of negatives
    assert not report.ok and "numeric not finite" in str(report) and "the forward" in str(report)
    with pytest.raises(AssertionError):
        assert_gradcheck(lambda t: _SquareWithNaNGradient.apply(t), [x], mode=mode)


def test_bad_arguments_are_refused_with_what_to_do():
    x = np.array([1.0, 2.0])
    with pytest.raises(TypeError, match=r"gradcheck\(fn, \[x\]\)"):
        gradcheck(lambda t: t * t, x)  # one input, not in a list
    with pytest.raises(ValueError, match="eps.*must be a finite number > 0"):
        gradcheck(lambda t: t * t, [x], eps=0.0)
