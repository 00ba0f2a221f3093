"""The engine's behaviour: the graph walk, gradient bookkeeping, no_grad, errors, anomaly mode,
device mixing, and the fused losses at extreme logits."""

from __future__ import annotations

import math
import sys
import warnings

import numpy as np
import pytest

import minivae as mv
from minivae import backend as B
from minivae import ops
from minivae.tensor import AnomalyError, Function, Tensor, is_grad_enabled, no_grad


@pytest.fixture(autouse=True)
def _float64():
    with mv.set_default_dtype("float64"):
        yield


def leaf(values):
    return Tensor(np.asarray(values, dtype=np.float64), requires_grad=True)


# ----------------------------------------------------------------------------- construction


def test_tensor_dtypes_follow_the_default_and_keep_arrays_as_they_are():
    with mv.set_default_dtype("float32"):
        assert Tensor([1.0, 2.0]).dtype == np.float32
        assert Tensor(3.0).dtype == np.float32
        assert Tensor(np.ones(2)).dtype == np.float64  # an array keeps its dtype
        x = Tensor(np.ones(2, dtype=np.float32), requires_grad=True)
        assert (x * 2.0).dtype == np.float32  # Python numbers take the tensor's dtype
        assert (2.0 - x).dtype == np.float32 and (1.0 / x).dtype == np.float32


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match="only floating tensors"):
        Tensor(np.arange(3), requires_grad=True)


def test_array_like_properties_and_repr():
    x = leaf(np.arange(6.0).reshape(2, 3))
    assert (x.shape, x.ndim, x.size, len(x)) == ((2, 3), 2, 6, 2)
    assert x.is_leaf and not (x * 1.0).is_leaf
    assert "requires_grad=True" in repr(x) and "op=Mul" in repr(x * 2.0)
    assert x.T.shape == (3, 2)
    assert Tensor(np.array([[4.0]])).item() == 4.0


def test_ndarray_on_the_left_defers_to_the_tensor():
    x = leaf([1.0, 2.0])
    y = np.array([10.0, 20.0]) + x
    assert isinstance(y, Tensor)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 1.0])


def test_full_reductions_give_arrays_not_numpy_scalars():
    x = leaf(np.arange(4.0))
    for y in (x.sum(), x.mean(), x.max(), ops.logsumexp(x)):
        assert isinstance(y.data, np.ndarray) and y.shape == ()
    s = leaf(2.0)
    (s * x).sum().backward()
    assert isinstance(s.grad, np.ndarray) and s.grad.shape == () and float(s.grad) == 6.0


# ----------------------------------------------------------------------------- gradient bookkeeping


def test_fan_out_accumulates_gradients():
    x = leaf([0.5, -1.0, 2.0])
    y = (x * 2.0 + ops.exp(x) - x * x).sum()  # x used three times (four operands)
    y.backward()
    expected = 2.0 + np.exp(x.numpy()) - 2.0 * x.numpy()
    np.testing.assert_allclose(x.grad, expected, rtol=1e-15)


@pytest.mark.parametrize(
    "fn, grad",
    [
        (lambda x: x * x, lambda v: 2.0 * v),
        (lambda x: x + x, lambda v: np.full_like(v, 2.0)),
        (lambda x: x - x, lambda v: np.zeros_like(v)),
        (lambda x: x / x, lambda v: np.zeros_like(v)),
        (lambda x: ops.matmul(x, x), lambda v: np.ones((2, 2)) @ v.T + v.T @ np.ones((2, 2))),
    ],
    ids=["mul", "add", "sub", "div", "matmul"],
)
def test_same_tensor_as_both_operands(fn, grad):
    x = leaf([[1.5, -2.0], [0.5, 3.0]])
    fn(x).sum().backward()
    np.testing.assert_allclose(x.grad, grad(x.numpy()), rtol=1e-14, atol=1e-15)


def test_repeated_backward_accumulates_into_leaf_grad_without_mutating_the_old_one():
    x = leaf([1.0, 2.0])
    (x * 3.0).sum().backward()
    first = x.grad
    (x * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [6.0, 6.0])
    np.testing.assert_array_equal(first, [3.0, 3.0])  # accumulation made a new array
    x.zero_grad()
    assert x.grad is None


def test_shared_gradient_arrays_stay_independent():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (a + b).sum().backward()  # a and b may be handed the same gradient array
    (a * 5.0).sum().backward()
    np.testing.assert_array_equal(a.grad, [6.0, 6.0])
    np.testing.assert_array_equal(b.grad, [1.0, 1.0])


def test_non_leaf_tensors_and_constants_keep_no_grad():
    x = leaf([1.0, -2.0])
    c = Tensor(np.array([3.0, 3.0]))
    h = x * 2.0
    (h * h * c).sum().backward()
    assert h.grad is None and c.grad is None
    np.testing.assert_allclose(x.grad, 8.0 * x.numpy() * 3.0)


def test_backward_with_an_explicit_gradient():
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    y = x * x
    y.backward(np.array([[1.0, 0.0], [0.5, 2.0]]))
    np.testing.assert_allclose(x.grad, [[2.0, 0.0], [3.0, 16.0]])


@pytest.fixture
def default_recursion_limit():
    """Python's default limit (1000) during the test: the walk must not need a deeper stack."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    yield
    sys.setrecursionlimit(old)


def test_a_10000_op_chain_backpropagates(default_recursion_limit):
    x = leaf([1.0])
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [1.0001**10_000], rtol=1e-10)
    np.testing.assert_allclose(x.grad, [math.e], rtol=1e-3)
    del y  # freeing a 10,000-deep graph must not crash either


# ----------------------------------------------------------------------------- no_grad and detach


def test_no_grad_records_nothing():
    x = leaf([1.0, 2.0])
    with no_grad():
        assert not is_grad_enabled()
        y = x * 2.0 + 1.0
    assert is_grad_enabled()
    assert not y.requires_grad and y.is_leaf and y._ctx is None
    with pytest.raises(RuntimeError, match="does not require gradients"):
        y.sum().backward()


def test_no_grad_as_a_decorator_and_after_an_exception():
    @no_grad()
    def evaluate(t):
        """doc"""
        assert not is_grad_enabled()
        return t * 3.0

    x = leaf([1.0])
    y = evaluate(x)
    assert not y.requires_grad and is_grad_enabled()
    assert evaluate.__name__ == "evaluate" and evaluate.__doc__ == "doc"
    with pytest.raises(KeyError), no_grad():
        raise KeyError("boom")
    assert is_grad_enabled()


def test_no_grad_without_parentheses_is_a_decorator_and_a_clear_error_in_with():
    @no_grad
    def evaluate(t):
        assert not is_grad_enabled()
        return t * 3.0

    assert not evaluate(leaf([1.0])).requires_grad and is_grad_enabled()
    with pytest.raises(TypeError, match=r"no_grad\(\) takes no arguments .*got True"):
        no_grad(True)
    for manager in (no_grad, mv.detect_anomaly):
        with pytest.raises(TypeError, match=rf"write `with {manager.__name__}\(\):`, with paren"):  # noqa: SIM117
            with manager:  # the error is in this with-statement alone
                pass
    assert is_grad_enabled()


def test_detach_shares_data_and_cuts_the_graph():
    x = leaf([1.0, 3.0])
    d = x.detach()
    assert not d.requires_grad and d.is_leaf
    assert np.shares_memory(d.data, x.data)
    (d * x).sum().backward()
    np.testing.assert_array_equal(x.grad, x.numpy())  # d is a constant: not 2x


# ----------------------------------------------------------------------------- errors


class WrongShape(Function):
    """y = 2x, with a backward that returns a gradient of the wrong shape."""

    def forward(self, x):
        return 2.0 * x

    def backward(self, grad_out):
        return (grad_out.sum(axis=0),)


def test_a_backward_with_the_wrong_shape_is_named():
    x = leaf(np.ones((3, 2)))
    y = WrongShape.apply(x)
    with pytest.raises(RuntimeError, match=r"WrongShape\.backward returned a gradient of shape \(2,\) "
                                           r"for input 0 of shape \(3, 2\)"):  # fmt: skip
        y.sum().backward()


def test_backward_on_a_non_scalar_needs_a_gradient():
    y = leaf(np.ones((2, 3))) * 2.0
    with pytest.raises(RuntimeError, match=r"non-scalar tensor of shape \(2, 3\).*loss\.sum\(\)"):
        y.backward()
    with pytest.raises(
        ValueError, match=r"gradient of shape \(3,\) for a tensor of shape \(2, 3\)"
    ):
        y.backward(np.ones(3))


def test_backward_without_gradients_says_so():
    with pytest.raises(RuntimeError, match="requires_grad=True"):
        Tensor(np.ones(2)).sum().backward()


@pytest.mark.parametrize(
    "call, op, shapes",
    [
        (lambda: ops.add(np.ones((2, 3)), np.ones(4)), "add", ["(2, 3)", "(4,)"]),
        (lambda: ops.sub(np.ones((2, 3)), np.ones((3, 2))), "sub", ["(2, 3)", "(3, 2)"]),
        (lambda: ops.mul(np.ones(5), np.ones((2, 4))), "mul", ["(5,)", "(2, 4)"]),
        (lambda: ops.div(np.ones((2, 1, 3)), np.ones((4, 2))), "div", ["(2, 1, 3)", "(4, 2)"]),
        (lambda: ops.matmul(np.ones((2, 3)), np.ones((4, 5))), "matmul", ["(2, 3)", "(4, 5)"]),
        (lambda: ops.matmul(np.ones(3), np.ones((3, 5))), "matmul", ["(3,)", "(3, 5)"]),
        (lambda: ops.concatenate([np.ones((2, 3)), np.ones((2, 4))]), "concatenate",
         ["(2, 4)", "(2, 3)"]),
        (lambda: ops.stack([np.ones((2, 3)), np.ones((3, 2))]), "stack", ["(3, 2)", "(2, 3)"]),
        (lambda: ops.linear(np.ones((5, 4)), np.ones((3, 2)), np.ones(2)), "linear",
         ["(5, 4)", "(3, 2)"]),
        (lambda: ops.linear(np.ones((5, 4)), np.ones((4, 2)), np.ones(3)), "linear",
         ["(3,)", "(4, 2)"]),
        (lambda: ops.bernoulli_log_prob(np.ones((2, 3)), np.ones(2)), "bernoulli_log_prob",
         ["(2, 3)", "(2,)"]),
        (lambda: ops.reshape(np.ones((2, 3)), (4, 2)), "reshape", ["(2, 3)", "(4, 2)"]),
    ],
    ids=["add", "sub", "mul", "div", "matmul", "matmul-1d", "concatenate", "stack", "linear",
         "linear-bias", "bernoulli", "reshape"],
)  # fmt: skip
def test_mismatched_shapes_raise_naming_the_op_and_both_shapes(call, op, shapes):
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert message.startswith(op + ":"), message
    for shape in shapes:
        assert shape in message, message


def test_cross_entropy_refuses_bad_labels():
    logits = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\), got values from 0 to 4"):
        ops.cross_entropy(logits, [0, 4, 1])
    with pytest.raises(ValueError, match=r"labels of shape \(2,\) for logits of shape \(3, 4\)"):
        ops.cross_entropy(logits, [0, 1])
    with pytest.raises(ValueError, match="labels must be integers"):
        ops.cross_entropy(logits, np.array([0.0, 1.0, 2.0]))


def test_bad_axes_are_refused():
    with pytest.raises(ValueError, match="sum: axis 2 is out of range"):
        ops.sum(np.ones((2, 3)), axis=2)
    with pytest.raises(ValueError, match="names an axis twice"):
        ops.mean(np.ones((2, 3)), axis=(1, -1))
    with pytest.raises(ValueError, match="transpose: axes"):
        ops.transpose(np.ones((2, 3)), (0, 0))
    with pytest.raises(TypeError, match="exponent must be a Python number"):
        ops.pow(leaf([1.0]), leaf([2.0]))


# ----------------------------------------------------------------------------- anomaly mode


def test_anomaly_mode_names_the_first_forward_op_making_nan():
    x = leaf([-1.0, 2.0])
    expected = r"forward of Log produced 1 NaN and 0 Inf"
    with (
        mv.detect_anomaly(),
        np.errstate(invalid="ignore"),
        pytest.raises(AnomalyError, match=expected),
    ):
        ops.exp(ops.log(x) * 2.0)  # Log is first; Mul and Exp would only pass the NaN on
    assert issubclass(AnomalyError, FloatingPointError)


def test_anomaly_mode_names_the_first_backward_op_making_inf():
    x = leaf([0.0, 4.0])
    y = (ops.sqrt(x) * 2.0).sum()  # finite forward: sqrt(0) = 0
    expected = r"backward of Sqrt \(input 0\) produced 0 NaN and 1 Inf"
    with (
        mv.detect_anomaly(),
        np.errstate(divide="ignore"),
        pytest.raises(AnomalyError, match=expected),
    ):
        y.backward()


def test_without_anomaly_mode_nan_and_inf_pass_silently():
    x = leaf([0.0, 4.0])
    with np.errstate(all="ignore"):
        (ops.sqrt(x) * 2.0).sum().backward()
        bad = ops.log(leaf([-1.0]))
    assert np.isinf(x.grad[0]) and x.grad[1] == 0.5
    assert np.isnan(bad.numpy()[0])


def test_anomaly_mode_switches_back_and_has_a_plain_setter():
    x = leaf([-1.0])
    with mv.detect_anomaly():
        pass
    with np.errstate(invalid="ignore"):
        ops.log(x)  # off again: no error
        mv.set_detect_anomaly(True)
        with pytest.raises(AnomalyError):
            ops.log(x)
        mv.set_detect_anomaly(False)
        with mv.detect_anomaly(False):
            ops.log(x)


def test_anomaly_mode_refuses_a_backward_from_arrays_changed_since_the_forward():
    """A weight edited between forward and backward (the step taken before backward()) gave
    the gradient of a computation that never ran; anomaly mode names the op and the array."""
    w, x = leaf([[1.0, 2.0], [3.0, 4.0]]), leaf([[1.0, 1.0]])
    with mv.detect_anomaly():
        loss = (ops.matmul(x, w) * 3.0).sum()
        w.data -= 0.5  # in place: the forward's saved w is this very array
        with pytest.raises(AnomalyError, match=r"MatMul: input 1 \(shape \(2, 2\)\) was "
                                               r"changed in place between the forward and"):  # fmt: skip
            loss.backward()
        assert w.grad is None
        h = ops.matmul(x, w)
        loss = (h * 3.0).sum()
        h.data[0, 0] = 7.0  # an op's output, which the next op read
        with pytest.raises(AnomalyError, match=r"Mul: input 0"):
            loss.backward()
        ops.matmul(x, w).sum().backward()  # nothing changed: the gradient as usual
    np.testing.assert_array_equal(w.grad, [[1.0, 1.0], [1.0, 1.0]])


def test_in_place_changes_are_checked_only_for_a_forward_in_anomaly_mode():
    w, x = leaf([[1.0, 2.0]]), leaf([[1.0]])
    loss = ops.matmul(x, w).sum()  # no copies kept: the check costs nothing by default
    w.data *= 2.0
    with mv.detect_anomaly():
        loss.backward()
    np.testing.assert_array_equal(w.grad, [[1.0, 1.0]])


def test_the_in_place_check_treats_nan_as_unchanged():
    from minivae.tensor import _changed

    a = np.array([np.nan, 1.0])
    assert not _changed(a, a.copy())
    assert _changed(a, np.array([np.nan, 2.0])) and _changed(a, np.array([0.0, 1.0]))
    assert not _changed(np.array([1, 2]), np.array([1, 2]))


# ----------------------------------------------------------------------------- devices


def test_mixing_a_numpy_array_into_a_gpu_computation_is_refused(monkeypatch):
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    monkeypatch.setattr(B, "device", "gpu")  # pretend the gpu is current (xp stays NumPy)
    with pytest.raises(TypeError) as info:
        a + b
    message = str(info.value)
    assert message.startswith("Add: got a NumPy array, but the current device is 'gpu' (CuPy)")
    assert "from_numpy" in message
    with pytest.raises(
        TypeError, match=r"^Tensor: got a NumPy array, but the current device is 'gpu'"
    ):
        Tensor(np.ones(2))


def test_mixing_a_gpu_array_into_a_cpu_computation_is_refused(monkeypatch):
    a = leaf([1.0, 2.0])
    on_gpu = np.array([3.0, 4.0])  # stands in for a CuPy array
    real_array_device = B.array_device
    monkeypatch.setattr(B, "array_device", lambda x: "gpu" if x is on_gpu else real_array_device(x))
    with pytest.raises(TypeError, match=r"^Mul: got a CuPy array, but the current device is 'cpu'"):
        ops.mul(a, on_gpu)
    assert ops.mul(a, np.array([3.0, 4.0])).shape == (2,)  # a plain NumPy array is fine


# ----------------------------------------------------------------------------- fused losses at extremes


@pytest.fixture
def strict_floats():
    """Every warning an error, and NumPy raising on overflow, division by zero and invalid values.

    Underflow stays ignored (NumPy's default): exp(-1e4) = 0 is the right answer, not a fault.
    """
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        yield


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bernoulli_log_prob_at_extreme_logits(dtype, strict_floats):
    with mv.set_default_dtype(dtype):
        logits = Tensor(np.array([1e4, -1e4, 1e4, -1e4, 0.0], dtype=dtype), requires_grad=True)
        x = Tensor(np.array([1.0, 1.0, 0.0, 0.0, 1.0], dtype=dtype), requires_grad=True)
        lp = ops.bernoulli_log_prob(logits, x)
        lp.sum().backward()
    assert lp.dtype == dtype and logits.grad.dtype == dtype
    np.testing.assert_array_equal(lp.numpy()[:4], [0.0, -1e4, -1e4, 0.0])
    np.testing.assert_allclose(lp.numpy()[4], -np.log(2.0), rtol=1e-6)
    np.testing.assert_array_equal(logits.grad, [0.0, 1.0, -1.0, 0.0, 0.5])  # x - sigmoid(l)
    np.testing.assert_array_equal(x.grad, [1e4, -1e4, 1e4, -1e4, 0.0])  # l


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cross_entropy_with_one_huge_logit(dtype, strict_floats):
    with mv.set_default_dtype(dtype):
        logits = Tensor(np.array([[1e4, 0.0, -1e4], [1e4, 0.0, -1e4], [-1e4, -1e4, -1e4]],
                                 dtype=dtype), requires_grad=True)  # fmt: skip
        loss = ops.cross_entropy(logits, [0, 2, 1])
        loss.sum().backward()
    assert loss.dtype == dtype
    # absolute error: float32 rounds at the logits' scale (1e4 * 2^-23 ~ 1e-3)
    np.testing.assert_allclose(loss.numpy(), [0.0, 2e4, np.log(3.0)], rtol=1e-6,
                               atol=4e4 * np.finfo(dtype).eps)  # fmt: skip
    third = 1.0 / 3.0
    expected = [[0.0, 0.0, 0.0], [1.0, 0.0, -1.0], [third, third - 1.0, third]]
    np.testing.assert_allclose(logits.grad, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_stable_activations_and_soft_max_family_at_extremes(dtype, strict_floats):
    values = np.array([1e4, -1e4], dtype=dtype)
    checks = {
        "sigmoid": (ops.sigmoid, [1.0, 0.0], [0.0, 0.0]),
        "softplus": (ops.softplus, [1e4, 0.0], [1.0, 0.0]),
        "tanh": (ops.tanh, [1.0, -1.0], [0.0, 0.0]),
        "log_softmax": (ops.log_softmax, [0.0, -2e4], [-1.0, 1.0]),
        "softmax": (ops.softmax, [1.0, 0.0], [0.0, 0.0]),
        "logsumexp": (ops.logsumexp, 1e4, [1.0, 0.0]),
    }
    with mv.set_default_dtype(dtype):
        for name, (fn, value, grad) in checks.items():
            x = Tensor(values, requires_grad=True)
            y = fn(x)
            y.sum().backward()
            assert y.dtype == dtype and x.grad.dtype == dtype, name
            np.testing.assert_allclose(y.numpy(), value, rtol=1e-6, err_msg=name)
            np.testing.assert_allclose(x.grad, grad, rtol=1e-6, atol=1e-30, err_msg=name)


def test_sigmoid_keeps_its_relative_precision_in_the_left_tail():
    x = np.array([-40.0, -20.0, -5.0, 0.0, 5.0, 40.0])
    y = ops.sigmoid(Tensor(x)).numpy()
    expected = np.exp(-np.logaddexp(0.0, -x))  # 1 / (1 + e^-x), computed in logs
    np.testing.assert_allclose(y, expected, rtol=1e-14)
    assert np.isfinite(np.log(y)).all()  # sigmoid(-40) ~ 4e-18 is not rounded to 0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_soft_max_family_is_accurate_for_equal_huge_logits(dtype, strict_floats):
    """(x - m) - log sum e^(x - m): no rounding at the scale of x (1e4 in float32 is 1e-3 coarse)."""
    x = np.full((1, 3), -1e4, dtype=dtype)
    tol = 4 * np.finfo(dtype).eps
    with mv.set_default_dtype(dtype):
        np.testing.assert_allclose(ops.softmax(Tensor(x)).numpy(), 1.0 / 3.0, rtol=tol)
        np.testing.assert_allclose(ops.log_softmax(Tensor(x)).numpy(), -np.log(3.0), rtol=tol)
        np.testing.assert_allclose(ops.cross_entropy(Tensor(x), [1]).numpy(), np.log(3.0), rtol=tol)


class _TwoInputs(Function):
    """y = a * b, with a backward that can be made to return the wrong number of gradients."""

    returned = "two"

    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, grad_out):
        if self.returned == "one":
            return (grad_out * self.b,)
        if self.returned == "three":
            return grad_out * self.b, grad_out * self.a, grad_out
        return [grad_out * self.b, grad_out * self.a]  # a list is taken as the tuple it means


@pytest.mark.parametrize("returned", ["one", "three"])
def test_a_backward_with_the_wrong_count_of_gradients_says_so(returned):
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    b = Tensor(np.array([3.0, 4.0]), requires_grad=True)
    _TwoInputs.returned = returned
    try:
        with pytest.raises(RuntimeError, match=r"_TwoInputs.backward returned \d gradient\(s\) "
                                               r"for the 2 input\(s\)"):  # fmt: skip
            _TwoInputs.apply(a, b).sum().backward()
    finally:
        _TwoInputs.returned = "two"
    _TwoInputs.apply(a, b).sum().backward()  # the list form works
    np.testing.assert_array_equal(a.grad, [3.0, 4.0])
    np.testing.assert_array_equal(b.grad, [1.0, 2.0])


@pytest.mark.parametrize("data", ["abc", None, [object()]])
def test_a_tensor_of_what_is_not_numbers_is_refused(data):
    with pytest.raises(TypeError, match="a Tensor holds numbers"):
        Tensor(data)


def test_a_second_backward_from_the_same_tensor_is_refused_unless_asked_for():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="would add them again.*retain_graph=True"):
        y.backward()
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])  # not doubled
    x.grad = None
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()  # asked for: the gradients add up
    np.testing.assert_array_equal(x.grad, [4.0, 8.0])
    with pytest.raises(RuntimeError, match="already run"):
        y.backward()


def test_bad_axes_are_refused_by_the_op_that_got_them():
    a = Tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match="concatenate: axis 2 is out of range"):
        ops.concatenate([a, a], axis=2)
    with pytest.raises(ValueError, match="stack: axis 5 is out of range"):
        ops.stack([a, a], axis=5)
    with pytest.raises(TypeError, match="sum: axis must be a whole number"):
        a.sum(axis=1.0)
    assert ops.concatenate([a, a], axis=-1).shape == (2, 6)  # negative axes still count back
    assert ops.stack([a, a], axis=-1).shape == (2, 3, 2)
